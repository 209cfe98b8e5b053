"""Calling again after an error that may pass: a bounded number of attempts or a deadline, paused between."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """A moment on the monotonic clock by which some work must be over."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining_s(self) -> float:
        return self.at - time.monotonic()

    def allows(self, duration_s: float) -> bool:
        """True when something that may take duration_s, started now, ends in time."""
        return duration_s <= self.remaining_s()

    def earlier_by(self, seconds: float) -> Deadline:
        return Deadline(self.at - seconds)


def fixed_pause(seconds: float) -> Callable[[int], float]:
    """The same pause after every failed attempt."""
    return lambda attempt: seconds


def growing_jitter(low_s: float, high_s: float) -> Callable[[int], float]:
    """A random pause in [low_s, high_s], times the number of the attempt that failed.

    Two callers that failed against each other (a deadlock) then rarely meet again at once.
    """
    return lambda attempt: random.uniform(low_s, high_s) * attempt  # noqa: S311 - jitter, not security


def call_with_retries[T](
    operation: Callable[[], T],
    *,
    retry_if: Callable[[Exception], bool],
    pause_s: Callable[[int], float],
    attempts: int | None = None,
    budget_s: float | None = None,
    on_retry: Callable[[Exception, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """operation's result, calling it again after each error that retry_if accepts.

    The error is raised as it is when retry_if refuses it, after the last of `attempts`, or when the
    pause before the next attempt would end more than budget_s after the first attempt began.
    on_retry hears of each error that is retried, with the pause about to be taken.
    """
    deadline = None if budget_s is None else clock() + budget_s
    attempt = 1
    while True:
        try:
            return operation()
        except Exception as error:
            if not retry_if(error):
                raise
            if attempts is not None and attempt >= attempts:
                raise
            pause = pause_s(attempt)
            if deadline is not None and clock() + pause > deadline:
                raise
            if on_retry is not None:
                on_retry(error, pause)
            sleep(pause)
        attempt += 1
