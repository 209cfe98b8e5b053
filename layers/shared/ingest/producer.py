"""The producer's logic: validate a customer, enqueue it, and say "accepted" only once SQS has it."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ingest.errors import InvalidInput, Unavailable, validated
from ingest.models import REQUEST_ID_PATTERN, Accepted, CustomerIn, QueueMessage

# Request ids made from an Idempotency-Key live in their own UUID namespace.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1b8c9e-3f57-4c1e-9a51-2f7d0c4d8e21")
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


class MessageSender(Protocol):
    """The SQS call the producer makes (boto3's SQS client has it)."""

    def send_message(
        self, *, QueueUrl: str, MessageBody: str, MessageGroupId: str, MessageDeduplicationId: str
    ) -> Mapping[str, Any]: ...


def _now_micros() -> int:
    return time.time_ns() // 1_000


def request_id_for(idempotency_key: str | None, caller: str, customer: CustomerIn) -> str:
    """The same key from the same caller for the same body always names the same request; without a
    key, a fresh id.

    Scoping by caller keeps one client's keys from colliding with (or blocking) another's. The body's
    fingerprint keeps a key reused for different data from silently dropping that data: it becomes
    a request of its own.
    """
    if idempotency_key is None:
        return str(uuid.uuid4())
    if not _REQUEST_ID.fullmatch(idempotency_key):  # fullmatch: "$" alone lets a final newline through
        raise InvalidInput(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 64 letters, digits, '-' or '_'",
            field="Idempotency-Key",
        )
    fingerprint = hashlib.sha256(
        json.dumps(customer.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{caller}\n{idempotency_key}\n{fingerprint}"))


def parse_customer(document: Any) -> CustomerIn:
    """The customer a request's JSON document describes; InvalidInput names the first wrong field."""
    return validated(CustomerIn, document)


class Producer:
    def __init__(self, queue_url: str, sqs: MessageSender) -> None:
        self.queue_url = queue_url
        self.sqs = sqs

    def accept(self, customer: CustomerIn, idempotency_key: str | None, caller: str) -> Accepted:
        request_id = request_id_for(idempotency_key, caller, customer)
        message = QueueMessage(
            request_id=request_id,
            customer_id=customer.customer_id,
            accepted_at=_now_micros(),
            payload=customer.model_dump(mode="json", exclude_none=True),
        )
        try:
            self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=message.model_dump_json(),
                # One group per customer: its records are applied in order, other customers in parallel.
                MessageGroupId=customer.customer_id,
                # SQS drops a resend of the same request within 5 minutes; the database's primary key
                # catches any later one.
                MessageDeduplicationId=request_id,
            )
        except (BotoCoreError, ClientError) as error:
            raise Unavailable(
                "queue_unavailable",
                "the request was not stored; retry it"
                + (
                    " with the same Idempotency-Key"
                    if idempotency_key
                    else " (send an Idempotency-Key to make retries safe)"
                ),
            ) from error
        return Accepted(request_id=request_id, customer_id=customer.customer_id)
