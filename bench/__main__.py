"""make bench: every benchmark, merged into reports/bench.json, with a summary table.

python -m bench                      # the full run (several minutes)
python -m bench --quick              # a smoke run with small counts (well under a minute)
python -m bench --only write         # one part; its keys are merged into the existing file
python -m bench --output /tmp/b.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bench.common import progress
from local.template import REPO_ROOT

# Part name -> (module, what it measures). Run in this order.
PARTS = {
    "write": ("bench.write_path", "consumer vs ceilings vs naive write path (throwaway MariaDB, TLS)"),
    "producer": ("bench.producer", "producer handler per request (SQS stubbed)"),
    "drain": ("bench.drain", "20,000-record backlog drained by the local stack"),
    "recovery": ("bench.recovery", "first commit after 45 s and 5 min database outages (local stack)"),
    "sqs": ("bench.sqs", "local SQS emulator (and moto's server for comparison)"),
    "sizes": ("bench.sizes", "sam build: layer and function sizes"),
    "cold": ("bench.cold_start", "cold import of each handler in a fresh python3.13"),
}
# The API functions' first callers wait for their cold start; the consumer's and the migrator's do not.
# The console (a demo) has no target.
COLD_IMPORT_TARGET_MS = {"producer": 300, "reader": 300, "consumer": 450, "migrator": 450}
# The same promise in multiples of `import boto3` alone, which every function pays (machine-independent).
COLD_IMPORT_TARGET_RATIO = {"producer": 1.5, "reader": 1.5, "consumer": 1.8, "migrator": 1.8}


def _within(targets: Mapping[str, float]) -> Callable[[Mapping[str, float]], bool]:
    """Met when each function with a target is within it (the console has none)."""
    return lambda values: all(value <= targets[name] for name, value in values.items() if name in targets)


# (key, unit, target as text, check) for the summary; sqs_* keys are listed as they come.
# consumer_vs_ceiling is a reference figure: its ceiling leaves out work the promises require.
TARGETS = {
    "consumer_vs_invariant_ceiling": (">= 0.9", lambda v: v >= 0.9),
    "consumer_vs_naive": (">= 10", lambda v: v >= 10),
    "producer_us_p99": ("< 2,000 us", lambda v: v < 2_000),
    "cold_import_ms": ("<= 300 ms API, 450 ms others", _within(COLD_IMPORT_TARGET_MS)),
    "cold_import_ratio_to_boto3": ("<= 1.5 API, 1.8 others", _within(COLD_IMPORT_TARGET_RATIO)),
    "recovery_first_commit_s": ("< 30 s each", lambda v: all(s < 30 for s in v.values())),
}
DEFAULT_OUTPUT = REPO_ROOT / "reports" / "bench.json"


def run_parts(names: list[str], quick: bool) -> dict:
    results: dict = {}
    for index, name in enumerate(names, 1):
        module_name, description = PARTS[name]
        progress(f"({index}/{len(names)}) {name}: {description}")
        started = time.monotonic()
        part = importlib.import_module(module_name).run(quick=quick)
        progress(
            f"({index}/{len(names)}) {name} done in {time.monotonic() - started:.0f} s: {json.dumps(part)}"
        )
        results.update(part)
    return results


def _format(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {_format(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}"


def summary(results: dict) -> str:
    rows = [("key", "value", "target", "")]
    for key, value in results.items():
        target, check = TARGETS.get(key, ("", None))
        verdict = "" if check is None else ("met" if check(value) else "MISSED")
        rows.append((key, _format(value), target, verdict))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def write(output: Path, results: dict, merge: bool) -> dict:
    document = {}
    if merge and output.exists():
        try:
            document = json.loads(output.read_text())
        except json.JSONDecodeError:
            document = {}
    document.update(results)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(output)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small counts, few repetitions")
    parser.add_argument(
        "--only", choices=sorted(PARTS), action="append", help="run only this part (repeatable)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    names = [name for name in PARTS if not args.only or name in args.only]
    started = time.monotonic()
    mode = "quick smoke run" if args.quick else "full run"
    progress(f"benchmarks ({mode}): {', '.join(names)}")
    if args.quick and {"sizes", "cold"} & set(names):
        # Smoke run: `sam build` (tens of seconds) overlaps the other parts; a full run builds
        # after the timed parts so the build does not compete with them for the CPU.
        from bench.artifacts import start_build

        start_build()
    results = run_parts(names, args.quick)
    document = write(args.output, results, merge=bool(args.only))
    progress(f"wrote {args.output} in {time.monotonic() - started:.0f} s total")
    print(summary(document), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
