"""Waiting on AWS with a line of progress: operators see that a long wait is alive and what it waits for."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ops.stack import OperatorError


class Waiter:
    """Polls every `interval_s` and writes progress to `stream` (stderr, so --output json stays clean)."""

    def __init__(
        self,
        interval_s: float = 5.0,
        stream: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.stream = stream if stream is not None else sys.stderr
        self.sleep = sleep
        self.clock = clock

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def until[T](self, what: str, check: Callable[[], T | None], timeout_s: float) -> T:
        """The first value `check` returns that is not None; an error naming `what` after `timeout_s`."""
        started = self.clock()
        while True:
            value = check()
            if value is not None:
                return value
            elapsed = self.clock() - started
            if elapsed > timeout_s:
                raise OperatorError(f"gave up waiting for {what} after {elapsed:.0f} s")
            self.say(f"... waiting for {what} ({elapsed:.0f} s)")
            self.sleep(self.interval_s)
