"""The metrics in the Embedded Metric Format documents Powertools Metrics prints to stdout."""

from __future__ import annotations

import json
from contextlib import suppress


def metric_values(stdout: str) -> dict[str, list[float]]:
    """Metric name -> its values in the EMF documents of a captured stdout."""
    values: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        with suppress(json.JSONDecodeError):
            document = json.loads(line)
            if isinstance(document, dict) and "_aws" in document:
                for directive in document["_aws"]["CloudWatchMetrics"]:
                    for metric in directive["Metrics"]:
                        values[metric["Name"]] = document[metric["Name"]]
    return values
