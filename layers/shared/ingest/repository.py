"""SQL for the two tables. Every function takes a live connection; none opens or caches one."""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pymysql

from ingest.console import RunSummary
from ingest.models import CommittedRecord, CustomerProfile, QueueMessage, naive_utc


@dataclass(frozen=True)
class StoreResult:
    inserted: int
    duplicates: int


# One encoder for every row: json.dumps builds a new one per call when given options.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json(value: dict[str, Any]) -> str:
    return _COMPACT_JSON.encode(value)


# A request_id already present is left as it is: with the server's default client flags a no-op
# update counts 0 affected rows, so rowcount is the number of rows really inserted. (INSERT IGNORE
# would also turn data errors into warnings and store truncated values.)
_INSERT_RECORDS = (
    "INSERT INTO customer_records (request_id, customer_id, payload, accepted_at) VALUES {rows} "
    "ON DUPLICATE KEY UPDATE request_id = request_id"
)

# The profile moves only to a newer record: (accepted_at, request_id) decides, never queue order.
# The candidates are read back from the ledger, not taken from the messages: a request re-sent after
# SQS's 5-minute deduplication window carries a later accepted_at, but it is the same request, and
# the ledger keeps the time it was first accepted.
# MySQL evaluates the assignments left to right, each seeing the ones before it, so accepted_at,
# which the condition reads, is assigned last; request_id before it is harmless, because when only
# request_id differs the condition then compares equal values and keeps accepted_at. Rows of one
# customer are applied one by one, each against the row as the previous one left it.
# Columns are qualified: the SELECT's table has the same names.
# VALUES() rather than the row alias of MySQL 8.0.19+, which MariaDB (the local stand-in) lacks.
_NEWER = "(VALUES(accepted_at), VALUES(request_id)) > (customers.accepted_at, customers.request_id)"
_UPSERT_CUSTOMERS = (
    "INSERT INTO customers (customer_id, request_id, accepted_at) "
    "SELECT customer_id, request_id, accepted_at FROM customer_records WHERE request_id IN ({ids}) "
    "ON DUPLICATE KEY UPDATE "
    f"customers.request_id = IF({_NEWER}, VALUES(request_id), customers.request_id), "
    f"customers.accepted_at = IF({_NEWER}, VALUES(accepted_at), customers.accepted_at)"
)


def record_row(
    request_id: str, customer_id: str, payload: dict[str, Any], accepted_at: int
) -> tuple[str, str, str, datetime]:
    """The parameters of one record in records_insert: the payload as compact JSON, accepted_at
    (microseconds since the epoch) as DATETIME(6)."""
    return (request_id, customer_id, _json(payload), naive_utc(accepted_at))


# One statement text per batch size (a batch holds 1 to 10 records): built once, not per batch.
@cache
def records_insert(rows: int) -> str:
    """The ledger INSERT of `rows` records, each (request_id, customer_id, payload, accepted_at)."""
    return _INSERT_RECORDS.format(rows=", ".join(["(%s, %s, %s, %s)"] * rows))


@cache
def profiles_upsert(request_ids: int) -> str:
    """The profile upsert from the ledger rows of `request_ids` request ids."""
    return _UPSERT_CUSTOMERS.format(ids=", ".join(["%s"] * request_ids))


def store_batch(connection: pymysql.Connection, messages: Sequence[QueueMessage]) -> StoreResult:
    """Store the messages in one transaction: all of them or, on any error, none."""
    if not messages:
        return StoreResult(inserted=0, duplicates=0)
    record_rows = [record_row(m.request_id, m.customer_id, m.payload, m.accepted_at) for m in messages]
    request_ids = [m.request_id for m in messages]
    connection.begin()
    try:
        with connection.cursor() as cursor:
            inserted = cursor.execute(
                records_insert(len(record_rows)), [value for row in record_rows for value in row]
            )
            cursor.execute(profiles_upsert(len(request_ids)), request_ids)
        connection.commit()
    except BaseException:
        _rollback_quietly(connection)
        raise
    return StoreResult(inserted=inserted, duplicates=len(messages) - inserted)


def _rollback_quietly(connection: pymysql.Connection) -> None:
    # A dead connection cannot roll back, and needs not: the server discards its transaction.
    with contextlib.suppress(Exception):
        connection.rollback()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def get_customer(connection: pymysql.Connection, customer_id: str) -> CustomerProfile | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.customer_id, c.request_id, r.payload, c.accepted_at, c.updated_at FROM customers c "
            "JOIN customer_records r ON r.request_id = c.request_id WHERE c.customer_id = %s",
            (customer_id,),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    customer_id, request_id, payload, accepted_at, updated_at = row
    return CustomerProfile(
        customer_id=customer_id,
        request_id=request_id,
        payload=json.loads(payload),
        accepted_at=_utc(accepted_at),
        updated_at=_utc(updated_at),
    )


def get_record(connection: pymysql.Connection, request_id: str) -> CommittedRecord | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT request_id, customer_id, payload, accepted_at, committed_at FROM customer_records "
            "WHERE request_id = %s",
            (request_id,),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    request_id, customer_id, payload, accepted_at, committed_at = row
    return CommittedRecord(
        request_id=request_id,
        customer_id=customer_id,
        payload=json.loads(payload),
        accepted_at=_utc(accepted_at),
        committed_at=_utc(committed_at),
    )


# ---- Reconciliation: the ledger read back (the drill, and the demo console through its read-only user) ----

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
