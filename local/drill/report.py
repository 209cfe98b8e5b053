"""reports/drill.json, reports/drill.md and reports/drill.png from the drill's runs."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt

from local.drill.runner import RESULT_KEYS, DrillOptions, RunResult

COLUMNS = (
    ("scenario", "scenario"),
    ("strategy", "strategy"),
    ("outage_s", "outage s"),
    ("offered", "offered"),
    ("acknowledged", "2xx"),
    ("committed", "committed"),
    ("lost", "lost"),
    ("duplicates", "dup"),
    ("stale_profiles", "stale"),
    ("dead_lettered", "DLQ"),
    ("max_queue_depth", "max depth"),
    ("unavailable_s", "unavail s"),
    ("drain_s", "drain s"),
    ("lag_p50_ms", "lag p50 ms"),
    ("lag_p99_ms", "lag p99 ms"),
)


def table(results: list[dict]) -> str:
    """A Markdown table (also readable as plain text in the terminal)."""
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [header, rule]
    for result in results:
        lines.append("| " + " | ".join(_cell(result[key]) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def write_reports(runs: list[RunResult], options: DrillOptions, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    results = [run.result for run in runs]
    assert all(tuple(result) == RESULT_KEYS for result in results)
    json_path = directory / "drill.json"
    json_path.write_text(json.dumps({"runs": results}, indent=2) + "\n")
    markdown_path = directory / "drill.md"
    markdown_path.write_text(_markdown(runs, options))
    chart_path = directory / "drill.png"
    _chart(runs, chart_path)
    return [json_path, markdown_path, chart_path]


def _markdown(runs: list[RunResult], options: DrillOptions) -> str:
    results = [run.result for run in runs]
    notes = []
    for run in runs:
        if run.result["lost"]:
            answers = ", ".join(
                f"{count} answered {answer}" for answer, count in sorted(run.lost_answers.items())
            )
            result = run.result
            notes.append(f"- {result['scenario']} / {result['strategy']}: {result['lost']} lost: {answers}.")
    return "\n".join(
        [
            "# Failure drill",
            "",
            f"{options.rate_rps:g} requests/s over {options.customers} customers, outages of "
            f"{options.outage_s:g} s, warm-up {options.warmup_s:g} s, traffic for {options.tail_s:g} s after "
            "recovery. Every run starts a fresh local stack (MariaDB writer + replica behind HAProxy, the "
            "SQS emulator, the real handlers).",
            "",
            table(results),
            "",
            "![timeline](drill.png)",
            "",
            "## How the numbers are counted",
            "- offered: requests the traffic generator sent (one per Idempotency-Key, retries included).",
            "- 2xx: requests acknowledged. The generator retries a 503 or a connection error with the same "
            "Idempotency-Key; any other answer is final.",
            "- committed: requests found in `customer_records` (by the drill's key in the payload).",
            "- lost: requests whose data is neither in `customer_records` nor in the dead-letter queue at "
            "the end: acknowledged and missing, or answered with a final error (502/504 from a failed "
            "write) and missing. Requests rejected as invalid (4xx) are not lost.",
            "- dup: rows beyond one per request. stale: customers whose profile is not their newest record.",
            "- DLQ: messages in the dead-letter queue (poison: set aside after "
            f"{options.poison_max_receives} receives instead of the template's 25, to be quick).",
            "- max depth: most messages in the queue (visible + in flight). unavail s: time a probe every "
            "0.25 s could not do what the consumer needs (reach the database through HAProxy and find it "
            "writable; reach the queue). drain s: from recovery until the last request acknowledged before "
            "it was stored. lag: accepted_at (producer) to committed_at (database), acknowledged requests.",
            f"- The queue's visibility timeout is {options.visibility_timeout} s in the drill "
            "(template: 180 s) so messages of a killed consumer come back within the run; the consumer's "
            "retry backoff is the template's.",
            "",
            *(["## Losses", *notes, ""] if notes else []),
        ]
    )


def _chart(runs: list[RunResult], path: Path) -> None:
    figure, axes = plt.subplots(len(runs), 1, figsize=(11, 2.6 * len(runs)), squeeze=False)
    for axis, run in zip(axes[:, 0], runs, strict=True):
        _timeline(axis, run)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _per_second(times: list[float], start: float, seconds: int) -> list[int]:
    counts = Counter(int(t - start) for t in times if 0 <= t - start < seconds)
    return [counts.get(second, 0) for second in range(seconds)]


def _timeline(axis: Any, run: RunResult) -> None:
    start = run.started
    end = max([s.time for s in run.samples] + [r.answered_at or start for r in run.requests] + [start + 1])
    seconds = math.ceil(end - start) + 1
    x = list(range(seconds))
    acked = _per_second([r.answered_at for r in run.requests if r.acknowledged], start, seconds)
    failed = _per_second([t for r in run.requests for t in r.failed_attempts], start, seconds)
    committed = _per_second([row.committed_at for row in run.rows], start, seconds)
    axis.axvspan(run.outage[0] - start, run.outage[1] - start, color="0.85", label="outage")
    axis.plot(x, acked, color="tab:green", label="2xx/s")
    axis.plot(x, failed, color="tab:red", label="failed attempts/s")
    axis.plot(x, committed, color="tab:purple", label="rows committed/s")
    axis.set_ylabel("per second")
    result = run.result
    depth_axis = axis.twinx()
    if result["strategy"] == "queue":  # the baselines have no queue
        depth_x = [s.time - start for s in run.samples if s.queue_depth is not None]
        depth_y = [s.queue_depth for s in run.samples if s.queue_depth is not None]
        depth_axis.plot(depth_x, depth_y, color="tab:blue", linestyle="--", label="queue depth")
        depth_axis.set_ylabel("queue depth")
        depth_axis.set_ylim(bottom=0)
    else:
        depth_axis.set_axis_off()
    axis.set_title(
        f"{result['scenario']} / {result['strategy']}: {result['acknowledged']} acknowledged, "
        f"{result['lost']} lost, {result['duplicates']} duplicates",
        fontsize=10,
    )
    axis.set_xlabel("seconds")
    handles, labels = axis.get_legend_handles_labels()
    depth_handles, depth_labels = depth_axis.get_legend_handles_labels()
    axis.legend(handles + depth_handles, labels + depth_labels, loc="upper left", fontsize=7, ncol=5)
