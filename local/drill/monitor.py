"""What the drill watches while it runs: queue depth, rows committed, and whether the consumer's path works.

The availability probe does what the consumer needs to do: reach the database through HAProxy with
the consumer's credentials and find it writable, and (for the queue strategy) reach the queue.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pymysql

from ingest_console import ledger
from ingest_console.queues import queue_depth
from local.servers import sqs_client
from local.stack import DATABASE, Stack

SAMPLE_INTERVAL_S = 0.25


@dataclass(frozen=True)
class Sample:
    time: float
    queue_depth: int | None  # visible + in flight; None when the queue did not answer
    committed: int | None  # rows in customer_records; None when the writer did not answer
    available: bool


class Monitor:
    def __init__(self, stack: Stack, uses_queue: bool):
        self.stack = stack
        self.uses_queue = uses_queue
        self.samples: list[Sample] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._sqs = sqs_client(stack.queues.endpoint, timeout=1)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.time()
            depth = self._queue_depth()
            writable = self.stack.database_writable()
            available = writable and (depth is not None or not self.uses_queue)
            self.samples.append(Sample(started, depth, self._committed(), available))
            self._stopping.wait(max(SAMPLE_INTERVAL_S - (time.time() - started), 0))

    def _queue_depth(self) -> int | None:
        try:
            visible, in_flight = queue_depth(self._sqs, self.stack.queues.queue_url)
            return visible + in_flight
        except Exception:
            return None

    def _committed(self) -> int | None:
        try:
            writer = self.stack.writer
            with writer.connect(database=DATABASE, connect_timeout=1, read_timeout=2) as connection:
                return ledger.count_records(connection, customer_prefix="")
        except pymysql.MySQLError:
            return None

    def unavailable_seconds(self) -> float:
        return sum(
            later.time - sample.time
            for sample, later in zip(self.samples, self.samples[1:], strict=False)
            if not sample.available
        )

    def max_queue_depth(self) -> int:
        return max((sample.queue_depth or 0 for sample in self.samples), default=0)
