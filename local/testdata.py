"""Events shaped as API Gateway and the SQS event source mapping deliver them: for tests and benchmarks."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from local.api_gateway import proxy_event
from local.event_source_mapping import SQS_EVENT_SOURCE

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:customer-ingest.fifo"


def api_event(
    method: str,
    path: str,
    body: str | dict | None = None,
    headers: dict[str, str] | None = None,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """API Gateway's proxy event of the request, its caller signed in to the user pool as user-1."""
    if isinstance(body, dict):
        body = json.dumps(body)
    headers = {"Content-Type": "application/json", **(headers or {})}
    encoded = body.encode() if body is not None else b""
    event = proxy_event(
        method, path, "", list(headers.items()), encoded, resource or path, path_parameters or {}, "127.0.0.1"
    )
    if base64_body and body is not None:
        event["body"], event["isBase64Encoded"] = base64.b64encode(encoded).decode(), True
    event["requestContext"]["authorizer"] = {"claims": {"sub": "user-1"}}
    return event


def queue_message(
    customer_id: str, accepted_at: int, request_id: str | None = None, **payload: Any
) -> dict[str, Any]:
    return {
        "request_id": request_id or uuid.uuid4().hex,
        "customer_id": customer_id,
        "accepted_at": accepted_at,
        "payload": {"customer_id": customer_id, **payload},
    }


def sqs_record(body: dict | str, group: str | None = None, receive_count: int = 1, sequence: int = 1) -> dict:
    text = body if isinstance(body, str) else json.dumps(body)
    if group is None and isinstance(body, dict):
        group = body["customer_id"]
    dedup = body["request_id"] if isinstance(body, dict) else hashlib.sha256(text.encode()).hexdigest()
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": f"AQEB{uuid.uuid4().hex}",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1732356000000",
            "SequenceNumber": str(18_800_000_000_000_000_000 + sequence),
            "MessageGroupId": group,
            "SenderId": "AROAEXAMPLE:producer",
            "MessageDeduplicationId": dedup,
            "ApproximateFirstReceiveTimestamp": "1732356000100",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": SQS_EVENT_SOURCE,
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
