"""Recovery: how soon the backlog is committed again once the databases are back after an outage.

The local stack (local.stack, as `make demo` runs it, on free ports) with the template's queue, retry
backoff and MaximumConcurrency. Both database instances are stopped, as the drill's upgrade scenario
stops them; a backlog is sent to the queue at the start of the outage, so the consumers receive and
fail all of it, over and over, for the whole outage, and no message arrives fresh after it. Then the
databases are started again. The clock runs from the first query the writer answers (its NOW(6))
to the first record committed after it (MIN(committed_at)): both on the database's clock. The run
fails unless the whole backlog is committed and the dead-letter queue is empty (promise 6).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import pymysql

from bench.common import progress, stack_on_free_ports
from bench.drain import fill
from ingest_console.queues import queue_depth
from local.servers import sqs_client
from local.stack import DATABASE, Stack

# Outage lengths in seconds, by their key in reports/bench.json.
OUTAGES = {"45s": 45, "300s": 300}
QUICK_OUTAGES = {"10s": 10}
BACKLOG, QUICK_BACKLOG = 1_000, 200
POLL_S = 0.05


def _first_answer_after_restart(stack: Stack, timeout: float = 120) -> datetime:
    """Start both instances (in the background) and return the writer's clock at its first answer."""
    starting = threading.Thread(target=stack.start_databases, name="start-databases")
    starting.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with stack.writer.connect() as connection, connection.cursor() as cursor:
                    cursor.execute("SELECT NOW(6)")
                    return cursor.fetchone()[0]
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the writer did not answer within {timeout:.0f} s") from None
                time.sleep(POLL_S)
    finally:
        starting.join()


def _first_commit_after(stack: Stack, back_at: datetime, backlog: int, timeout: float) -> float:
    """Seconds from `back_at` to the first commit, once the whole backlog is committed."""
    deadline = time.monotonic() + timeout
    with stack.writer.connect(DATABASE) as connection, connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT COUNT(*), TIMESTAMPDIFF(MICROSECOND, %s, MIN(committed_at)) FROM customer_records",
                (back_at,),
            )
            committed, first_us = cursor.fetchone()
            if committed >= backlog:
                return float(first_us) / 1e6
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {committed} of {backlog} records committed {timeout:.0f} s after")
            time.sleep(0.25)


def _outage(stack: Stack, outage_s: float, backlog: int, seed: int) -> float:
    with stack.writer.connect(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE TABLE customer_records")
    stack.stop_databases()
    started = time.monotonic()
    fill(stack.queues.endpoint, stack.queues.queue_url, backlog, seed=seed)
    progress(f"  databases stopped; {backlog:,} records queued; back in {outage_s:.0f} s")
    time.sleep(max(0.0, outage_s - (time.monotonic() - started)))
    back_at = _first_answer_after_restart(stack)
    first_commit_s = _first_commit_after(stack, back_at, backlog, timeout=180)
    dead_letters = sum(queue_depth(sqs_client(stack.queues.endpoint), stack.queues.dead_letter_url))
    if dead_letters:
        raise RuntimeError(f"{dead_letters} records in the dead-letter queue after a {outage_s:.0f} s outage")
    progress(f"  first commit {first_commit_s:.1f} s after the databases answered; backlog drained")
    return first_commit_s


def run(quick: bool = False) -> dict:
    outages, backlog = (QUICK_OUTAGES, QUICK_BACKLOG) if quick else (OUTAGES, BACKLOG)
    workdir = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    stack = stack_on_free_ports(workdir)
    results = {}
    try:
        stack.start()
        for seed, (key, outage_s) in enumerate(outages.items(), 200):
            progress(f"recovery: {outage_s} s outage of both database instances")
            results[key] = round(_outage(stack, outage_s, backlog, seed), 1)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"recovery_first_commit_s": results}


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
