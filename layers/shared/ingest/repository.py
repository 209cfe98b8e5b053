"""SQL for the two tables, as the consumer writes them and the reader reads them. Every function takes a
live connection; none opens or caches one. (Reading the ledger back to reconcile: ingest_console.ledger.)"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pymysql

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
