"""Backlog drain: 20,000 records waiting in the local SQS emulator, drained by the local stack.

The local stack (local.stack) runs as `make demo` runs it, on free ports: MariaDB writer and
replica (semi-sync), HAProxy as the proxy, the SQS emulator with the queues from template.yaml,
and the event source mapping emulator (local.event_source_mapping) with the template's default
MaximumConcurrency, each slot a consumer worker process running functions/consumer/app.py.
The backlog is sent before the consumers start; the clock runs from the first ReceiveMessage
that returned messages (a botocore hook) to the last commit (MAX(committed_at), database clock).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from bench.common import median, progress, queue_messages, stack_on_free_ports
from local.servers import sqs_client
from local.stack import DATABASE, Stack

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


class FirstReceive:
    """Records when a ReceiveMessage call first returned messages, in any boto3 client of this process."""

    def __init__(self) -> None:
        self.at: float | None = None
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.at = None

    def __call__(self, parsed: dict[str, Any] | None = None, **_kwargs: Any) -> None:
        if parsed and parsed.get("Messages"):
            now = time.time()
            with self._lock:
                if self.at is None:
                    self.at = now


def fill(endpoint: str, queue_url: str, count: int, seed: int) -> None:
    messages = queue_messages(count, seed=seed)
    batches = [messages[i : i + 10] for i in range(0, count, 10)]

    def send(batch: list[dict]) -> None:
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(i),
                "MessageBody": json.dumps(m, separators=(",", ":"), ensure_ascii=False),
                "MessageGroupId": m["customer_id"],
                "MessageDeduplicationId": m["request_id"],
            }
            for i, m in enumerate(batch)
        ]
        reply = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if reply.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed: {reply['Failed'][:2]}")

    client = sqs_client(endpoint, retries=3)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, batches))


def wait_for(stack: Stack, database: str, count: int, timeout: float) -> float:
    """Wait until `count` records are committed; returns the last commit as a UNIX time."""
    deadline = time.monotonic() + timeout
    with stack.writer.connect(database) as connection, connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT COUNT(*), UNIX_TIMESTAMP(MAX(committed_at)) FROM customer_records")
            stored, last = cursor.fetchone()
            if stored >= count:
                return float(last)
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {stored} of {count} records committed after {timeout:.0f} s")
            time.sleep(0.25)


def run(quick: bool = False) -> dict:
    repetitions, backlog = (1, 500) if quick else (3, 20_000)
    workdir = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    stack = stack_on_free_ports(workdir)
    first_receive = FirstReceive()
    session = boto3._get_default_session()  # the poller's clients come from boto3's default session
    session.events.register("after-call.sqs.ReceiveMessage", first_receive)
    rates = []
    try:
        # The stack's own start-up, minus the consumers (and the API, not needed here): the backlog
        # must be in the queue before the first receive.
        stack._start_databases()
        stack._start_queue()
        concurrency = stack.options.consumer_concurrency or stack.template.consumer_max_concurrency()
        progress(f"drain: local stack up in {workdir}; {concurrency} consumers (template default)")
        for repetition in range(repetitions):
            with stack.writer.connect(DATABASE) as connection, connection.cursor() as cursor:
                cursor.execute("TRUNCATE TABLE customer_records")
            started = time.monotonic()
            fill(stack.queues.endpoint, stack.queues.queue_url, backlog, seed=100 + repetition)
            progress(f"  {backlog:,} records queued in {time.monotonic() - started:.1f} s; draining")
            first_receive.reset()
            stack._start_consumers()
            last_commit = wait_for(stack, DATABASE, backlog, timeout=max(120.0, backlog / 20))
            stack.stop_consumers()
            if first_receive.at is None:
                raise RuntimeError("the records were committed without a ReceiveMessage that returned them")
            rates.append(backlog / (last_commit - first_receive.at))
            progress(f"  repetition {repetition + 1}/{repetitions}: {rates[-1]:,.0f} rows/s")
    finally:
        session.events.unregister("after-call.sqs.ReceiveMessage", first_receive)
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"drain_rows_per_s": round(median(rates), 1)}


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
