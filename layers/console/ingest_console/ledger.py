"""The ledger read back for reconciliation: which requests are committed, a run's totals, stale profiles.
The demo console (through its read-only user), the local drill and the benchmarks ask these; the
pipeline's functions never do. Every function takes a live connection; none opens or caches one."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import pymysql

from ingest_console.contract import RunSummary

# Request ids per statement: far below max_allowed_packet, and an IN list MySQL still plans as a range.
IDS_PER_QUERY = 1_000

# Customers (of those whose id starts with the prefix) whose profile is missing or is not their newest
# record by (accepted_at, request_id).
_STALE_PROFILES = """
SELECT COUNT(*) FROM (
    SELECT r.customer_id,
           (SELECT newest.request_id FROM customer_records newest
             WHERE newest.customer_id = r.customer_id
             ORDER BY newest.accepted_at DESC, newest.request_id DESC LIMIT 1) AS newest_request_id
      FROM customer_records r WHERE r.customer_id LIKE %s GROUP BY r.customer_id
) expected
LEFT JOIN customers c ON c.customer_id = expected.customer_id
WHERE c.request_id IS NULL OR c.request_id <> expected.newest_request_id
"""


def starting_with(prefix: str) -> str:
    """A LIKE pattern for ids starting with `prefix`, its wildcard characters taken literally."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def committed_request_ids(connection: pymysql.Connection, request_ids: Sequence[str]) -> list[str]:
    """Which of `request_ids` the ledger holds."""
    found: list[str] = []
    with connection.cursor() as cursor:
        for start in range(0, len(request_ids), IDS_PER_QUERY):
            chunk = request_ids[start : start + IDS_PER_QUERY]
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT request_id FROM customer_records WHERE request_id IN ({placeholders})", list(chunk)
            )
            found.extend(str(row[0]) for row in cursor.fetchall())
    return found


def count_records(connection: pymysql.Connection, customer_prefix: str) -> int:
    """Rows of the customers whose id starts with `customer_prefix` (an index range of the ledger)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM customer_records WHERE customer_id LIKE %s",
            (starting_with(customer_prefix),),
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def stale_profiles(connection: pymysql.Connection, customer_prefix: str = "") -> int:
    with connection.cursor() as cursor:
        cursor.execute(_STALE_PROFILES, (starting_with(customer_prefix),))
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(fraction * 1000) - 1]


def run_summary(connection: pymysql.Connection, customer_prefix: str, key_path: str) -> RunSummary:
    """The ledger's side of a run whose customer ids start with `customer_prefix`: its rows, the distinct
    client keys among them (the JSON path `key_path` of the payload: a second row for one key is a
    duplicate), stale profiles, and the commit lag (committed_at - accepted_at)."""
    pattern = starting_with(customer_prefix)
    with connection.cursor() as cursor:
        # One scan: the percentiles need every lag anyway, and each row's key comes with it.
        cursor.execute(
            "SELECT TIMESTAMPDIFF(MICROSECOND, accepted_at, committed_at), JSON_VALUE(payload, %s) "
            "FROM customer_records WHERE customer_id LIKE %s",
            (key_path, pattern),
        )
        rows = cursor.fetchall()
    lags_ms = [float(lag_us) / 1000 for lag_us, _ in rows]
    distinct_keys = len({key for _, key in rows if key is not None})
    p50, p99 = percentile(lags_ms, 0.5), percentile(lags_ms, 0.99)
    return RunSummary(
        rows=len(rows),
        distinct_keys=distinct_keys,
        duplicates=len(rows) - distinct_keys,
        stale_profiles=stale_profiles(connection, customer_prefix),
        lag_p50_ms=None if p50 is None else round(p50, 1),
        lag_p99_ms=None if p99 is None else round(p99, 1),
    )
