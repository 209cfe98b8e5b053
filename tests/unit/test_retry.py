"""The retry helper: attempts, deadlines and pauses, on a fake clock."""

from __future__ import annotations

import pytest

from ingest.retry import call_with_retries, fixed_pause, growing_jitter


class FakeClock:
    """time.monotonic and time.sleep for a test: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with `error` the first `failures` calls, then returns "done"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_an_error_that_passes_is_retried_until_the_call_succeeds():
    # GIVEN an operation that fails twice with a retryable error
    clock, operation = FakeClock(), Flaky(2, TimeoutError("busy"))

    # WHEN it is called with up to four attempts
    result = call_with_retries(
        operation,
        retry_if=lambda error: isinstance(error, TimeoutError),
        pause_s=fixed_pause(0.5),
        attempts=4,
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )

    # THEN it succeeds on the third attempt, after two pauses
    assert result == "done"
    assert operation.calls == 3
    assert clock.pauses == [0.5, 0.5]


def test_after_the_last_attempt_the_error_is_raised():
    # GIVEN an operation that always fails with a retryable error
    clock, operation = FakeClock(), Flaky(10, TimeoutError("busy"))

    # WHEN it is called with up to four attempts
    with pytest.raises(TimeoutError):
        call_with_retries(
            operation,
            retry_if=lambda error: True,
            pause_s=fixed_pause(0.01),
            attempts=4,
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )

    # THEN it was tried four times, with a pause between each two
    assert operation.calls == 4
    assert len(clock.pauses) == 3


def test_an_error_retry_if_refuses_is_raised_at_once():
    clock, operation = FakeClock(), Flaky(1, ValueError("bad data"))

    with pytest.raises(ValueError, match="bad data"):
        call_with_retries(
            operation,
            retry_if=lambda error: isinstance(error, TimeoutError),
            pause_s=fixed_pause(1),
            attempts=4,
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )

    assert operation.calls == 1
    assert clock.pauses == []


def test_no_pause_ends_after_the_budget():
    # GIVEN an operation that always fails, a pause of 10 s and a budget of 35 s
    clock, operation = FakeClock(), Flaky(100, ConnectionError("not yet"))
    retried: list[float] = []

    # WHEN it is called with that budget and no attempt limit
    with pytest.raises(ConnectionError):
        call_with_retries(
            operation,
            retry_if=lambda error: True,
            pause_s=fixed_pause(10),
            budget_s=35,
            on_retry=lambda error, pause: retried.append(pause),
            sleep=clock.sleep,
            clock=lambda: clock.now,
        )

    # THEN it pauses three times (ending at 10, 20, 30 s), not a fourth that would end at 40 s
    assert operation.calls == 4
    assert clock.pauses == [10, 10, 10]
    # AND on_retry heard of each retried error with its pause
    assert retried == [10, 10, 10]


def test_growing_jitter_stays_within_its_range_times_the_attempt():
    pause = growing_jitter(0.01, 0.05)
    for attempt in (1, 2, 3):
        samples = [pause(attempt) for _ in range(200)]
        assert all(0.01 * attempt <= sample <= 0.05 * attempt for sample in samples)
        assert len(set(samples)) > 1  # random, so two consumers rarely pick the same pause
