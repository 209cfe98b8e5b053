"""Request validation: every check SQS makes on a parameter before it changes anything.

Each function either returns the parameter in the form the store keeps, or raises the SqsError
SQS answers with.
"""

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.sqs.errors import SqsError, invalid, missing
from local.sqs.model import (
    FIFO_ONLY_ATTRIBUTES,
    NUMERIC_ATTRIBUTES,
    SETTABLE_ATTRIBUTES,
    Queue,
    queue_name_from_arn,
)

QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
# Characters SQS accepts in a body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF
FORBIDDEN_BODY_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_VISIBILITY_TIMEOUT_S = 43200


def int_parameter(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if not isinstance(value, int) or not low <= value <= high:
        raise invalid(
            f"Value {value} for parameter {name} is invalid. Reason: Must be between {low} and {high}."
        )
    return value


def visibility_timeout(params: Mapping[str, Any]) -> int:
    """ChangeMessageVisibility's VisibilityTimeout, which (unlike ReceiveMessage's) is required."""
    if "VisibilityTimeout" not in params:
        raise missing("VisibilityTimeout")
    return int_parameter(params, "VisibilityTimeout", 0, 0, MAX_VISIBILITY_TIMEOUT_S)


def receipt_handle(handle: str | None) -> tuple[int, str]:
    """Receipt handles are "<message row id>.<token of that receive>"."""
    if not handle:
        raise missing("ReceiptHandle")
    row_id, _, token = handle.partition(".")
    if not row_id.isdigit() or not token:
        raise SqsError("ReceiptHandleIsInvalid", f'The input receipt handle "{handle}" is not a valid one.')
    return int(row_id), token


# ---- queues -------------------------------------------------------------------------------


def new_queue(params: Mapping[str, Any], queues: Mapping[str, Queue]) -> tuple[str, dict[str, str]]:
    """CreateQueue's name and attributes, validated (a .fifo name makes a FIFO queue)."""
    name = params.get("QueueName")
    if not name:
        raise missing("QueueName")
    fifo = name.endswith(".fifo")
    if not QUEUE_NAME.fullmatch(name.removesuffix(".fifo")) or len(name) > 80:
        raise invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
    requested = dict(params.get("Attributes") or {})
    if requested.get("FifoQueue", "false").lower() == "true" and not fifo:
        raise invalid("The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                      "or underscores, must end with .fifo suffix and be 1 to 80 in length.")  # fmt: skip
    if fifo:
        requested["FifoQueue"] = "true"
    return name, queue_attributes(requested, fifo, queues)


def queue_attributes(
    attributes: Mapping[str, Any], fifo: bool, queues: Mapping[str, Queue]
) -> dict[str, str]:
    """Settable attributes as strings, checked for a queue of this type; `queues` holds the
    dead-letter queues a RedrivePolicy may name."""
    checked = {}
    for name, given in attributes.items():
        if name not in SETTABLE_ATTRIBUTES or (name in FIFO_ONLY_ATTRIBUTES and not fifo):
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
        value = str(given)
        if name in NUMERIC_ATTRIBUTES:
            _, low, high = NUMERIC_ATTRIBUTES[name]
            if not value.isdigit() or not low <= int(value) <= high:
                raise SqsError("InvalidAttributeValue", f"Invalid value for the parameter {name}.")
        elif name in {"FifoQueue", "ContentBasedDeduplication"}:
            if value.lower() not in {"true", "false"}:
                raise SqsError("InvalidAttributeValue", f"Invalid value for the parameter {name}.")
            value = value.lower()
        elif (name == "DeduplicationScope" and value not in {"queue", "messageGroup"}) or (
            name == "FifoThroughputLimit" and value not in {"perQueue", "perMessageGroupId"}
        ):
            raise SqsError("InvalidAttributeValue", f"Invalid value for the parameter {name}.")
        elif name == "RedrivePolicy" and value:
            value = redrive_policy(value, fifo, queues)
        checked[name] = value
    return checked


def redrive_policy(value: str, fifo: bool, queues: Mapping[str, Queue]) -> str:
    reason = "Value {} for parameter RedrivePolicy is invalid. Reason: {}"
    try:
        policy = json.loads(value)
        target, max_receive_count = policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])
    except (ValueError, KeyError, TypeError):
        raise SqsError(
            "InvalidAttributeValue", reason.format(value, "Redrive policy is not a dict.")
        ) from None
    if not 1 <= max_receive_count <= 1000:
        raise SqsError("InvalidAttributeValue", reason.format(value, "Invalid value for maxReceiveCount."))
    dead_letter_queue = queues.get(queue_name_from_arn(target))
    if dead_letter_queue is None:
        raise SqsError("InvalidAttributeValue", reason.format(value, "Dead-letter target does not exist."))
    if dead_letter_queue.fifo != fifo:
        raise SqsError(
            "InvalidAttributeValue",
            reason.format(value, "Dead-letter queue must be same type of queue as the source."),
        )
    return json.dumps(
        {"deadLetterTargetArn": target, "maxReceiveCount": max_receive_count}, separators=(",", ":")
    )


# ---- messages -----------------------------------------------------------------------------


@dataclass(slots=True)
class OutgoingMessage:
    """A SendMessage request (or batch entry) that passed validation."""

    body: str
    attributes: dict[str, Any]
    group_id: str | None
    dedup_id: str | None  # set for FIFO queues only (from the body with content-based deduplication)
    delay_s: int


def outgoing_message(queue: Queue, params: Mapping[str, Any]) -> OutgoingMessage:
    body = params.get("MessageBody")
    if not body:
        raise missing("MessageBody")
    if FORBIDDEN_BODY_CHARACTER.search(body):
        raise SqsError("InvalidMessageContents", "Invalid characters found.")
    attributes = params.get("MessageAttributes") or {}
    size = len(body.encode()) + message_attributes_size(attributes)
    if size > queue.number("MaximumMessageSize"):
        raise invalid(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{queue.number('MaximumMessageSize')} bytes."
        )
    group_id, dedup_id = params.get("MessageGroupId"), params.get("MessageDeduplicationId")
    if queue.fifo:
        if not group_id:
            raise missing("MessageGroupId")
        if "DelaySeconds" in params:
            raise invalid(
                f"Value {params['DelaySeconds']} for parameter DelaySeconds is invalid. "
                "Reason: The request include parameter that is not valid for this queue type."
            )
        if not dedup_id:
            if queue.attributes.get("ContentBasedDeduplication") != "true":
                raise invalid(
                    "The queue should either have ContentBasedDeduplication enabled "
                    "or MessageDeduplicationId provided explicitly"
                )
            dedup_id = hashlib.sha256(body.encode()).hexdigest()
    elif dedup_id:
        raise invalid(
            "Value for parameter MessageDeduplicationId is invalid. "
            "Reason: The request include parameter that is not valid for this queue type."
        )
    delay = int_parameter(params, "DelaySeconds", queue.number("DelaySeconds"), 0, 900)
    return OutgoingMessage(body, attributes, group_id, dedup_id if queue.fifo else None, delay)


def message_attributes_size(attributes: Mapping[str, Any]) -> int:
    size = 0
    for name, value in attributes.items():
        if not isinstance(value, dict) or "DataType" not in value:
            raise invalid(f"The message attribute '{name}' must contain a non-empty attribute type.")
        if "StringValue" not in value and "BinaryValue" not in value:
            raise invalid(f"The message attribute '{name}' must contain a non-empty message attribute value.")
        content = value.get("StringValue", "").encode() or base64.b64decode(value.get("BinaryValue", ""))
        size += len(name.encode()) + len(value["DataType"].encode()) + len(content)
    return size
