"""One drill run: a fresh stack, steady traffic, one failure, the drain, and the reconciliation."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import pymysql

from ingest.config import DatabaseSettings
from local.drill.baselines import DirectWriter
from local.drill.monitor import Monitor
from local.drill.reconcile import database_rows, reconcile
from local.drill.scenarios import POISON, stage
from local.drill.traffic import TrafficGenerator
from local.faults import POISON_PREFIX
from local.stack import Stack, StackOptions

log = logging.getLogger("local.drill")

STRATEGIES = ("queue", "direct", "retry")
# The JSON report holds exactly these keys per run, in this order.
RESULT_KEYS = (
    "scenario",
    "strategy",
    "outage_s",
    "rate_rps",
    "offered",
    "acknowledged",
    "committed",
    "lost",
    "duplicates",
    "stale_profiles",
    "dead_lettered",
    "max_queue_depth",
    "unavailable_s",
    "drain_s",
    "lag_p50_ms",
    "lag_p99_ms",
)
PROGRESS_EVERY_S = 2.0


@dataclass
class DrillOptions:
    outage_s: float = 10
    rate_rps: float = 50
    customers: int = 200
    warmup_s: float = 4
    tail_s: float = 5  # traffic after recovery
    drain_timeout_s: float = 180
    poison_max_receives: int = 3
    # The template's 180 s (6x the function timeout) would make a killed consumer's messages wait
    # three minutes to come back; the drill uses the function timeout, the least Lambda accepts.
    visibility_timeout: int = 30
    stack: StackOptions = field(default_factory=StackOptions)


@dataclass
class RunResult:
    result: dict  # RESULT_KEYS
    lost_answers: dict[str, int]  # final answer (HTTP status or "no answer") -> lost requests
    started: float
    outage: tuple[float, float]
    requests: list
    samples: list
    rows: list


def run(scenario: str, strategy: str, options: DrillOptions) -> RunResult:
    stack_options = StackOptions(**{**options.stack.__dict__})
    stack_options.visibility_timeout = options.visibility_timeout
    if scenario == POISON:
        stack_options.poison_receive_count = options.poison_max_receives
    stack = Stack(stack_options)
    log.info("=== %s / %s: starting a fresh stack", scenario, strategy)
    stack.start()
    try:
        return _run_on(stack, scenario, strategy, options)
    finally:
        stack.stop()


def _run_on(stack: Stack, scenario: str, strategy: str, options: DrillOptions) -> RunResult:
    if strategy != "queue":
        writer = DirectWriter(
            DatabaseSettings.from_env(stack.function_environment()), retry=strategy == "retry"
        )
        stack.replace_route("POST", "/customers", f"Drill{strategy.title()}Producer", writer.handler)
    monitor = Monitor(stack, uses_queue=strategy == "queue")
    traffic = TrafficGenerator(stack.api.url, options.rate_rps, options.customers)
    started = time.time()
    monitor.start()
    traffic.start()
    progress = _Progress(traffic, monitor, started)
    progress.start()
    try:
        time.sleep(options.warmup_s)
        outage_start = time.time()
        stage(scenario, stack, traffic, options.outage_s)
        recovered = time.time()
        time.sleep(options.tail_s)
        log.info("traffic stops; waiting for answers still in flight")
        traffic.stop()
        _wait_for_drain(stack, traffic, monitor, strategy, options.drain_timeout_s)
    finally:
        progress.stop()
        monitor.stop()
    log.info("reconciling the 2xx log against the database")
    counts = reconcile(stack, traffic.requests)
    rows = database_rows(stack)
    result = {
        "scenario": scenario,
        "strategy": strategy,
        "outage_s": options.outage_s,
        "rate_rps": options.rate_rps,
        **{key: counts[key] for key in RESULT_KEYS if key in counts},
        "max_queue_depth": monitor.max_queue_depth(),
        "unavailable_s": round(monitor.unavailable_seconds(), 1),
        "drain_s": drain_seconds(traffic.requests, rows, recovered),
    }
    result = {key: result[key] for key in RESULT_KEYS}
    log.info("=== %s / %s: %s", scenario, strategy, _summary(result))
    return RunResult(
        result=result,
        lost_answers=dict(counts["lost_answers"]),
        started=started,
        outage=(outage_start, recovered),
        requests=traffic.requests,
        samples=monitor.samples,
        rows=rows,
    )


def _wait_for_drain(
    stack: Stack, traffic: TrafficGenerator, monitor: Monitor, strategy: str, timeout_s: float
) -> None:
    """Until every acknowledged request is stored (poison excepted) and the queue is empty, or the timeout."""
    expected = {
        r.key for r in traffic.requests if r.acknowledged and not r.customer_id.startswith(POISON_PREFIX)
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stored = {row.drill_key for row in database_rows(stack)}
        except pymysql.MySQLError:
            stored = set()
        depth = monitor.samples[-1].queue_depth if monitor.samples else None
        if expected <= stored and (strategy != "queue" or depth == 0):
            return
        time.sleep(0.5)
    log.warning("the backlog did not drain within %.0f s; reconciling what is there", timeout_s)


def drain_seconds(requests: list, rows: list, recovered: float) -> float | None:
    """From recovery until the last request acknowledged before it was stored; None if one never was."""
    committed_at = {row.drill_key: row.committed_at for row in rows}
    backlog = [
        r.key
        for r in requests
        if r.acknowledged and r.answered_at <= recovered and not r.customer_id.startswith(POISON_PREFIX)
    ]
    if any(key not in committed_at for key in backlog):
        return None
    last = max((committed_at[key] for key in backlog), default=recovered)
    return round(max(last - recovered, 0), 1)


def _summary(result: dict) -> str:
    return ", ".join(f"{key}={result[key]}" for key in RESULT_KEYS[4:])


class _Progress:
    """A line every few seconds, so a long drill visibly moves."""

    def __init__(self, traffic: TrafficGenerator, monitor: Monitor, started: float):
        self.traffic, self.monitor, self.started = traffic, monitor, started
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(PROGRESS_EVERY_S):
            requests = self.traffic.snapshot()
            acked = sum(1 for request in requests if request.acknowledged)
            failed = sum(len(request.failed_attempts) for request in requests)
            sample = self.monitor.samples[-1] if self.monitor.samples else None
            depth = "?" if sample is None or sample.queue_depth is None else sample.queue_depth
            committed = "?" if sample is None or sample.committed is None else sample.committed
            state = "up" if sample is None or sample.available else "DOWN"
            log.info(
                "  t=%4.0fs offered=%d acked=%d failed attempts=%d queue=%s committed=%s consumer path %s",
                time.time() - self.started,
                len(requests),
                acked,
                failed,
                depth,
                committed,
                state,
            )
