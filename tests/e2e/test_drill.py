"""A short version of every drill scenario: the queue loses and duplicates nothing, direct writes lose."""

from typing import Any

import pytest

from local.drill.runner import DrillOptions, run
from local.drill.scenarios import SCENARIOS
from local.stack import StackOptions

pytestmark = pytest.mark.slow


def short_drill(stack_options: StackOptions, **overrides: Any) -> DrillOptions:
    settings: dict[str, Any] = {
        "outage_s": 4,
        "rate_rps": 25,
        "customers": 40,
        "warmup_s": 2,
        "tail_s": 2,
        "poison_max_receives": 2,
        "visibility_timeout": 10,  # a killed consumer's messages come back quickly
        "drain_timeout_s": 90,
        "stack": stack_options,
    }
    return DrillOptions(**(settings | overrides))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_queue_strategy_loses_and_duplicates_nothing(scenario: str, stack_options: StackOptions) -> None:
    outcome = run(scenario, "queue", short_drill(stack_options))
    result = outcome.result

    assert result["offered"] > 50
    assert result["acknowledged"] == result["offered"], "the client retries 503s until they are accepted"
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["stale_profiles"] == 0
    assert result["drain_s"] is not None, "the backlog drained"
    if scenario == "poison":
        poison = [r for r in outcome.requests if r.customer_id.startswith("poison-") and r.acknowledged]
        assert result["dead_lettered"] == len(poison) > 0
        assert result["committed"] == result["acknowledged"] - len(poison)
    else:
        assert result["dead_lettered"] == 0
        assert result["committed"] == result["acknowledged"]
    if scenario in ("upgrade", "failover", "queue-outage"):
        assert result["unavailable_s"] > 0, "the probe saw the outage"
        # the stack's supervisor restarts what dies, but leaves the drill's outage as long as it was made
        assert result["unavailable_s"] >= short_drill(stack_options).outage_s - 1


def test_direct_writes_lose_data_during_an_upgrade(stack_options: StackOptions) -> None:
    outcome = run("upgrade", "direct", short_drill(stack_options))
    result = outcome.result

    # It works while the database is up (so its losses are the outage's, not a broken baseline) ...
    assert result["acknowledged"] > 0
    # ... and loses what arrives while it is down.
    assert result["lost"] >= 1
    assert result["duplicates"] == 0
    # A direct write answers 2xx only once committed: no acknowledged request is missing. (A write can
    # also commit and then lose its answer with the connection, so committed may exceed acknowledged.)
    assert not [answer for answer in outcome.lost_answers if answer.startswith("2")]
    assert result["committed"] >= result["acknowledged"]
