"""Reconciliation: the traffic generator's log against what the database and the dead-letter queue hold.

A request's data is lost when the client handed it over and it is neither in customer_records nor
parked in the dead-letter queue at the end: acknowledged (2xx) and missing, or answered with a final
error (which the client cannot safely resend) and missing. Requests the API rejected as invalid (4xx)
are not lost. Duplicates are rows beyond one per request, found by the drill's own key in the payload.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from ingest_console import dead_letters, ledger
from ingest_console.ledger import percentile
from local.drill.traffic import Request
from local.servers import sqs_client
from local.stack import DATABASE, Stack

# A long poll answers as soon as the local queue holds a message: one empty receive is the end.
DEAD_LETTER_WAIT_S = 1


@dataclass(frozen=True)
class Row:
    request_id: str
    drill_key: str | None
    accepted_at: float  # seconds since the epoch
    committed_at: float


def database_rows(stack: Stack) -> list[Row]:
    with stack.writer.connect(database=DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT request_id, JSON_VALUE(payload, '$.attributes.drill_key'), "
            "UNIX_TIMESTAMP(accepted_at), UNIX_TIMESTAMP(committed_at) FROM customer_records"
        )
        return [Row(rid, key, float(accepted), float(committed)) for rid, key, accepted, committed in cursor]


def stale_profiles(stack: Stack, customer_prefix: str = "") -> int:
    """Customers (those whose id starts with `customer_prefix`) whose profile is not their newest record."""
    with stack.writer.connect(database=DATABASE) as connection:
        return ledger.stale_profiles(connection, customer_prefix)


def dead_lettered_keys(stack: Stack, limit: int) -> list[str]:
    """Drill keys of up to `limit` messages in the dead-letter queue, peeked and left there."""
    client = sqs_client(stack.queues.endpoint, retries=3)
    messages = dead_letters.peek_messages(client, stack.queues.dead_letter_url, limit, DEAD_LETTER_WAIT_S)
    payloads = [json.loads(message["Body"]).get("payload", {}) for message in messages]
    return [payload.get("attributes", {}).get("drill_key") for payload in payloads]


def is_rejected_as_invalid(request: Request) -> bool:
    return request.status is not None and 400 <= request.status < 500


def reconcile(stack: Stack, requests: list[Request]) -> dict:
    rows = database_rows(stack)
    dead_letter = dead_lettered_keys(stack, limit=len(requests))
    keyed_rows = [row for row in rows if row.drill_key is not None]
    stored_keys = {row.drill_key for row in keyed_rows}
    handed_over = [request for request in requests if not is_rejected_as_invalid(request)]
    acknowledged = [request for request in requests if request.acknowledged]
    parked = set(dead_letter)
    missing = [r for r in handed_over if r.key not in stored_keys and r.key not in parked]
    acknowledged_keys = {request.key for request in acknowledged}
    lags_ms = [
        (row.committed_at - row.accepted_at) * 1000 for row in rows if row.drill_key in acknowledged_keys
    ]
    p50, p99 = percentile(lags_ms, 0.5), percentile(lags_ms, 0.99)
    return {
        "offered": len(requests),
        "acknowledged": len(acknowledged),
        "committed": len(stored_keys & {request.key for request in requests}),
        "lost": len(missing),
        # a row the drill never asked for counts as extra too
        "duplicates": len(keyed_rows) - len(stored_keys) + (len(rows) - len(keyed_rows)),
        "stale_profiles": stale_profiles(stack),
        "dead_lettered": len(dead_letter),
        "lag_p50_ms": None if p50 is None else round(p50, 1),
        "lag_p99_ms": None if p99 is None else round(p99, 1),
        # for the Markdown report: what the client was told about the requests that were lost
        "lost_answers": Counter("no answer" if r.status is None else str(r.status) for r in missing),
    }
