"""The failures the drill stages on a running stack. Each one returns once the system has recovered.

`outage_s` is the length of the failure: how long the databases stay down (upgrade), how long the
dead writer goes unreplaced before the replica is promoted (failover), how long consumers keep
crashing (consumer-crash), how long the queue is down (queue-outage), how long poison keeps coming.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from local.drill.traffic import TrafficGenerator
from local.stack import DATABASE, Stack

log = logging.getLogger("local.drill")

POISON_PREFIX = "poison-"
CRASH_EVERY_S = 2.0
# A database-side rejection, as a constraint or trigger in production would make it: the record is
# valid for the API but the database refuses it, every time.
POISON_TRIGGER = f"""
CREATE TRIGGER {DATABASE}.drill_reject_poison BEFORE INSERT ON {DATABASE}.customer_records
FOR EACH ROW BEGIN
    IF NEW.customer_id LIKE '{POISON_PREFIX}%' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'drill: this record is poison';
    END IF;
END
"""


def upgrade(stack: Stack, traffic: TrafficGenerator, outage_s: float) -> None:
    log.info("upgrade: stopping both database instances for %.0f s", outage_s)
    stack.stop_databases()
    time.sleep(outage_s)
    stack.start_databases()
    log.info("upgrade: both instances are back")


def failover(stack: Stack, traffic: TrafficGenerator, outage_s: float) -> None:
    old = stack.writer.name
    log.info("failover: SIGKILL of writer %s; promotion of the replica in %.0f s", old, outage_s)
    stack.kill_writer()
    time.sleep(outage_s)
    stack.fail_over()
    log.info("failover: %s is the writer, %s replicates from it", stack.writer.name, stack.replica.name)


def consumer_crash(stack: Stack, traffic: TrafficGenerator, outage_s: float) -> None:
    log.info("consumer-crash: killing a consumer between commit and delete every %.0f s", CRASH_EVERY_S)
    deadline = time.monotonic() + outage_s
    while time.monotonic() < deadline:
        stack.consumers.crash_after_commit()
        time.sleep(CRASH_EVERY_S)
    log.info("consumer-crash: %d consumers killed after their commit", stack.consumers.crashes)


def queue_outage(stack: Stack, traffic: TrafficGenerator, outage_s: float) -> None:
    if stack.sqs is None:
        raise RuntimeError("queue-outage kills the SQS emulator: unset INGEST_SQS_ENDPOINT to run it")
    log.info("queue-outage: SIGKILL of the SQS emulator for %.0f s", outage_s)
    stack.kill_queue()
    time.sleep(outage_s)
    stack.restart_queue()
    log.info("queue-outage: the emulator is back with its data")


def poison(stack: Stack, traffic: TrafficGenerator, outage_s: float) -> None:
    log.info("poison: one poison record per second for %.0f s; other customers keep flowing", outage_s)
    for number in range(int(outage_s)):
        traffic.send_to(f"{POISON_PREFIX}{number:03d}")
        time.sleep(1)


def install_poison_trigger(stack: Stack) -> None:
    stack.writer.execute(POISON_TRIGGER)


SCENARIOS: dict[str, Callable[[Stack, TrafficGenerator, float], None]] = {
    "upgrade": upgrade,
    "failover": failover,
    "consumer-crash": consumer_crash,
    "queue-outage": queue_outage,
    "poison": poison,
}
# The baselines write to the database themselves: no queue and no consumer to crash or poison.
BASELINE_SCENARIOS = ("upgrade", "failover")
