"""The failures the drill stages (local.faults), by the names its command line and report give them.

Only poison needs the traffic: its records go out among the other customers' requests.
"""

from __future__ import annotations

from collections.abc import Callable

from local import faults
from local.drill.traffic import TrafficGenerator
from local.stack import Stack

POISON = "poison"
# The scenarios that need nothing but the stack, in the order the drill runs them, poison last.
STACK_SCENARIOS: dict[str, Callable[[Stack, float], object]] = {
    "upgrade": faults.upgrade,
    "failover": faults.failover,
    "consumer-crash": faults.consumer_crash,
    "queue-outage": faults.queue_outage,
}
SCENARIOS = (*STACK_SCENARIOS, POISON)
# The baselines write to the database themselves: no queue and no consumer to crash or poison.
BASELINE_SCENARIOS = ("upgrade", "failover")


def stage(scenario: str, stack: Stack, traffic: TrafficGenerator, outage_s: float) -> None:
    """Stage the scenario on the stack; it returns once the system has recovered."""
    if scenario == POISON:
        faults.poison(stack, traffic.send_to, outage_s)
    else:
        STACK_SCENARIOS[scenario](stack, outage_s)
