"""The API functions' pool of environments: dead ones never serve again, replacements start one at a time.

The environments here are stand-ins (no interpreter is started): these tests are about the pool's
bookkeeping alone. tests/e2e/test_heal.py kills real environments under traffic.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from local import lambda_runtime
from local.lambda_runtime import EnvironmentGone, FunctionPool, InvocationTimedOut, LambdaContext


class StandInEnvironment:
    """An environment whose start takes a moment and whose invocations answer, or time out."""

    lock = threading.Lock()
    starting = 0
    most_starting_at_once = 0
    times_out = False

    def __init__(self, function: str, environment: dict[str, str], name: str, timeout_s: float, log: Path):
        self.alive = False
        self.invoked_after_death = 0

    @property
    def pid(self) -> int | None:
        return id(self) if self.alive else None

    def spawn(self) -> None:
        self.alive = True

    def wait_until_ready(self) -> None:
        pass

    def start(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.starting += 1
            cls.most_starting_at_once = max(cls.most_starting_at_once, cls.starting)
        time.sleep(0.02)  # an interpreter starting
        with cls.lock:
            cls.starting -= 1
        self.alive = True

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        if not self.alive:
            self.invoked_after_death += 1
            raise EnvironmentGone("it had died")
        if type(self).times_out:
            self.alive = False  # discarded, as Lambda discards a timed-out environment
            raise InvocationTimedOut("timed out")
        return {"served_by": id(self)}

    def is_alive(self) -> bool:
        return self.alive

    def kill(self) -> None:
        self.alive = False


@pytest.fixture
def environments(monkeypatch: pytest.MonkeyPatch) -> list[StandInEnvironment]:
    created: list[StandInEnvironment] = []

    class Recorded(StandInEnvironment):
        lock = threading.Lock()

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            created.append(self)

    monkeypatch.setattr(lambda_runtime, "WorkerProcess", Recorded)
    return created


def new_pool(tmp_path: Path) -> FunctionPool:
    pool = FunctionPool("producer", {}, "ProducerFunction", 1.0, tmp_path, initial=2, maximum=8)
    pool.start()
    return pool


def invoke_concurrently(pool: FunctionPool, count: int) -> list[Any]:
    """`count` invocations at the same moment; each one's answer or exception."""
    outcomes: list[Any] = []
    start_together = threading.Barrier(count)

    def invoke() -> None:
        start_together.wait()
        try:
            outcome: Any = pool({}, LambdaContext(function_name="ProducerFunction"))
        except Exception as error:
            outcome = error
        outcomes.append(outcome)

    threads = [threading.Thread(target=invoke) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_environments_discarded_after_timeouts_are_replaced_one_cold_start_at_a_time(
    environments: list[StandInEnvironment], tmp_path: Path
) -> None:
    # GIVEN a pool whose invocations all time out (each one discards its environment)
    pool = new_pool(tmp_path)
    type(environments[0]).times_out = True

    # WHEN 20 requests arrive at once, twice
    outcomes = invoke_concurrently(pool, 20) + invoke_concurrently(pool, 20)

    # THEN each request times out on an environment of its own: none served again after it was discarded
    assert len(outcomes) == 40
    assert all(isinstance(outcome, InvocationTimedOut) for outcome in outcomes)
    assert sum(environment.invoked_after_death for environment in environments) == 0
    # ... and the replacements started one at a time: no stampede of interpreters
    assert type(environments[0]).most_starting_at_once == 1
    assert len(environments) == 40  # the two initial ones, then one cold start per other request


def test_an_environment_that_died_while_idle_never_serves_and_the_request_succeeds(
    environments: list[StandInEnvironment], tmp_path: Path
) -> None:
    # GIVEN a pool whose two idle environments have both died
    pool = new_pool(tmp_path)
    for environment in environments:
        environment.kill()

    # WHEN requests arrive
    outcomes = invoke_concurrently(pool, 5)

    # THEN every one is served, by fresh environments, and no dead one was handed an event
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    served_by = {outcome["served_by"] for outcome in outcomes}
    assert served_by.isdisjoint({id(environment) for environment in environments[:2]})
    assert sum(environment.invoked_after_death for environment in environments) == 0
    assert pool.pids()[0], "the fresh environments are idle in the pool again"
