"""`make bench` in miniature: the quick run writes every figure the benchmark issue names.

No timing is asserted here (or anywhere in the tests): the numbers belong to reports/bench.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {"producer", "consumer", "reader", "migrator", "console"}
SCALAR_KEYS = {
    "consumer_rows_per_s",
    "invariant_ceiling_rows_per_s",
    "consumer_vs_invariant_ceiling",
    "ceiling_rows_per_s",
    "consumer_vs_ceiling",
    "naive_rows_per_s",
    "consumer_vs_naive",
    "drain_rows_per_s",
    "producer_us_p50",
    "producer_us_p99",
    "layer_bytes",
    "cold_import_boto3_ms",
}
PER_FUNCTION_KEYS = {"cold_import_ms", "cold_import_ratio_to_boto3", "function_bytes"}
API_FUNCTIONS = {"producer", "reader"}
# Seconds per outage length (the quick run has one short outage).
PER_OUTAGE_KEYS = {"recovery_first_commit_s"}


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


@pytest.mark.slow
def test_quick_bench_writes_every_key(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(output.read_text())

    sqs_keys = {key for key in report if key.startswith("sqs_")}
    assert sqs_keys, "bench/sqs.py's figures are missing"
    assert (
        set(report)
        == SCALAR_KEYS
        | PER_FUNCTION_KEYS
        | PER_OUTAGE_KEYS
        | {"cold_import_top5", "first_request_ms"}
        | sqs_keys
    )
    for key in SCALAR_KEYS | sqs_keys:
        assert is_number(report[key]), (key, report[key])
    for key in PER_FUNCTION_KEYS:
        assert set(report[key]) == FUNCTIONS, (key, report[key])
        assert all(is_number(value) for value in report[key].values()), (key, report[key])
    # Five packages per function, each with its milliseconds of import time
    assert set(report["cold_import_top5"]) == FUNCTIONS
    for packages in report["cold_import_top5"].values():
        assert len(packages) == 5
        assert all(isinstance(name, str) and is_number(ms) for name, ms in packages.items()), packages
    # The first request of each API function (import, client, first SQS or database call) was timed
    assert set(report["first_request_ms"]) == API_FUNCTIONS
    assert all(is_number(ms) for ms in report["first_request_ms"].values()), report["first_request_ms"]
    for key in PER_OUTAGE_KEYS:
        assert report[key], key
        assert all(is_number(value) for value in report[key].values()), (key, report[key])
    # The run ends with the summary table.
    assert any(line.startswith("consumer_vs_invariant_ceiling") for line in result.stdout.splitlines())
