"""The drill's baselines: a producer that writes to the database itself, as before the queue.

They exist only here, to show side by side what the queue changes. They reuse the product's own
validation, request ids and repository code; only the queue is missing.
- direct: one attempt; a database error fails the invocation, which API Gateway answers with 502.
- retry: attempts again until API Gateway's 29-second integration timeout, then the client gets 504.
"""

from __future__ import annotations

import json
import queue
import time
from http import HTTPStatus

from ingest.config import DatabaseSettings
from ingest.connection import Database
from ingest.errors import API_GATEWAY_TIMEOUT_S, RequestError
from ingest.models import QueueMessage
from ingest.producer import parse_customer, request_id_for
from ingest.repository import store_batch
from ingest.rest import error_reply, json_document
from ingest.retry import call_with_retries, fixed_pause

RETRY_PAUSE_S = 0.5
# Concurrent invocations that may hold a database connection (Lambda concurrency, in effect).
CONNECTION_POOL_SIZE = 50


class DirectWriter:
    def __init__(self, settings: DatabaseSettings, retry: bool):
        self.retry = retry
        self._pool: queue.Queue[Database] = queue.Queue()
        for _ in range(CONNECTION_POOL_SIZE):
            self._pool.put(Database(settings))

    def handler(self, event: dict, context) -> dict:
        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        try:
            document = json_document(
                event.get("body"), event.get("isBase64Encoded", False), headers.get("content-type")
            )
            customer = parse_customer(document)
            request_id = request_id_for(headers.get("idempotency-key"), "anonymous", customer)
        except RequestError as error:
            status, body, _ = error_reply(error)
            return _response(status, body)
        message = QueueMessage(
            request_id=request_id,
            customer_id=customer.customer_id,
            accepted_at=time.time_ns() // 1_000,
            payload=customer.model_dump(mode="json", exclude_none=True),
        )
        database = self._pool.get()

        def store() -> None:
            try:
                store_batch(database.connection(), [message])
            except Exception:
                database.discard()
                raise

        try:
            # An error left unhandled: API Gateway answers 502 (or 504 after its timeout).
            call_with_retries(
                store,
                retry_if=lambda error: self.retry,
                pause_s=fixed_pause(RETRY_PAUSE_S),
                budget_s=API_GATEWAY_TIMEOUT_S,
            )
        finally:
            self._pool.put(database)
        return _response(
            HTTPStatus.CREATED,
            {"request_id": request_id, "customer_id": customer.customer_id, "status": "committed"},
        )


def _response(status: int, body: dict) -> dict:
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
