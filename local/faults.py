"""The failures staged on a running local stack: the drill's scenarios and the demo console's faults.

Each step returns once the system has recovered. `outage_s` is the length of the failure: how long the
databases stay down (upgrade), how long the dead writer goes unreplaced before the replica is promoted
(failover), how long the writer is down (restart), how long consumers keep crashing (consumer crash),
how long the queue is down (queue outage), how long poison keeps coming (poison).

Each step pauses the supervision of what it stops (the Stack's fault methods do), so the outage lasts
as long as it was made.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from local.stack import DATABASE, Stack

log = logging.getLogger("local.faults")

POISON_PREFIX = "poison-"
CRASH_EVERY_S = 2.0
# A database-side rejection, as a constraint or trigger in production would make it: the record is
# valid for the API but the database refuses it, every time.
POISON_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS {DATABASE}.drill_reject_poison BEFORE INSERT ON {DATABASE}.customer_records
FOR EACH ROW BEGIN
    IF NEW.customer_id LIKE '{POISON_PREFIX}%' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'drill: this record is poison';
    END IF;
END
"""
POISON_EVERY_S = 1.0


def upgrade(stack: Stack, outage_s: float) -> None:
    log.info("upgrade: stopping both database instances for %.0f s", outage_s)
    stack.stop_databases()
    time.sleep(outage_s)
    stack.start_databases()
    log.info("upgrade: both instances are back")


def failover(stack: Stack, outage_s: float) -> None:
    old = stack.writer.name
    log.info("failover: SIGKILL of writer %s; promotion of the replica in %.0f s", old, outage_s)
    stack.kill_writer()
    time.sleep(outage_s)
    stack.fail_over()
    log.info("failover: %s is the writer, %s replicates from it", stack.writer.name, stack.replica.name)


def restart(stack: Stack, outage_s: float) -> None:
    writer = stack.writer.name
    log.info("restart: shutting down writer %s for %.0f s", writer, outage_s)
    stack.stop_writer()
    time.sleep(outage_s)
    stack.start_writer()
    log.info("restart: %s is back as the writer", writer)


def consumer_crash(stack: Stack, outage_s: float) -> int:
    """Returns how many consumers were killed after their commit."""
    log.info("consumer-crash: killing a consumer between commit and delete every %.0f s", CRASH_EVERY_S)
    crashes = stack.event_source_mapping.crashes
    deadline = time.monotonic() + outage_s
    while time.monotonic() < deadline:
        stack.event_source_mapping.crash_after_commit()
        time.sleep(CRASH_EVERY_S)
    killed = stack.event_source_mapping.crashes - crashes
    log.info("consumer-crash: %d consumers killed after their commit", killed)
    return killed


def queue_outage(stack: Stack, outage_s: float) -> None:
    if stack.sqs is None:
        raise RuntimeError("queue-outage kills the SQS emulator: unset INGEST_SQS_ENDPOINT to run it")
    log.info("queue-outage: SIGKILL of the SQS emulator for %.0f s", outage_s)
    stack.kill_queue()
    time.sleep(outage_s)
    stack.restart_queue()
    log.info("queue-outage: the emulator is back with its data")


def poison(
    stack: Stack, send: Callable[[str], None], outage_s: float, stopping: threading.Event | None = None
) -> None:
    """One poison record per second for `outage_s`: `send` posts a record for the customer id it is
    given, among whatever other traffic runs. Ends early once `stopping` is set."""
    stack.writer.execute(POISON_TRIGGER)
    batch = uuid.uuid4().hex[:8]  # each poison fault's records are new customers
    log.info("poison: one poison record per second for %.0f s; other customers keep flowing", outage_s)
    pause = stopping or threading.Event()
    for number in range(int(outage_s)):
        send(f"{POISON_PREFIX}{batch}-{number:03d}")
        if pause.wait(POISON_EVERY_S):
            return
