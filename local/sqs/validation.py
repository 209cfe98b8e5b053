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
MAX_QUEUE_NAME = 80
QUEUE_NAME_RULE = "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
FIFO_QUEUE_NAME_RULE = (
    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, "
    "must end with .fifo suffix and be 1 to 80 in length."
)
# Characters SQS accepts in a body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF
FORBIDDEN_BODY_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_VISIBILITY_TIMEOUT_S = 43200
MAX_ROW_ID_DIGITS = 18  # below 2**63
# MessageGroupId, MessageDeduplicationId: "alphanumeric characters and punctuation", up to 128.
MESSAGE_TOKEN = re.compile(r"[!-~]{1,128}")
NO_DEDUPLICATION_ID = (
    "The queue should either have ContentBasedDeduplication enabled "
    "or MessageDeduplicationId provided explicitly"
)
MAX_MESSAGE_ATTRIBUTES = 10
MAX_ATTRIBUTE_NAME = 256  # also the longest data type
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
RESERVED_ATTRIBUTE_PREFIXES = ("aws.", "amazon.")
ATTRIBUTE_DATA_TYPE = re.compile(r"(String|Number|Binary)(\..+)?", re.DOTALL)  # a custom label may follow
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


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
    # ASCII digits only (str.isdigit also takes other scripts' digits), few enough for SQLite's integer.
    if not (row_id.isascii() and row_id.isdigit() and len(row_id) <= MAX_ROW_ID_DIGITS and token):
        raise SqsError("ReceiptHandleIsInvalid", f'The input receipt handle "{handle}" is not a valid one.')
    return int(row_id), token


# ---- queues -------------------------------------------------------------------------------


def new_queue(params: Mapping[str, Any], queues: Mapping[str, Queue]) -> tuple[str, dict[str, str]]:
    """CreateQueue's name and attributes, validated: FifoQueue=true makes a FIFO queue, whose
    name must end in .fifo; any other name has no period."""
    name = params.get("QueueName")
    if not name:
        raise missing("QueueName")
    requested = params.get("Attributes") or {}
    fifo = requested.get("FifoQueue", "false").lower() == "true"
    base = name.removesuffix(".fifo") if fifo else name
    if len(name) > MAX_QUEUE_NAME or not QUEUE_NAME.fullmatch(base) or (fifo and base == name):
        raise invalid(FIFO_QUEUE_NAME_RULE if fifo else QUEUE_NAME_RULE)
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
            if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
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
    """The policy as the store keeps it: deadLetterTargetArn a string, maxReceiveCount a whole
    number (a JSON number or a string of digits, as CloudFormation passes it)."""
    reason = "Value {} for parameter RedrivePolicy is invalid. Reason: {}"
    try:
        policy = json.loads(value)
    except (ValueError, RecursionError):
        policy = None
    if not isinstance(policy, dict):
        raise SqsError("InvalidAttributeValue", reason.format(value, "Redrive policy is not a dict."))
    target, max_receive_count = policy.get("deadLetterTargetArn"), policy.get("maxReceiveCount")
    if not isinstance(target, str) or not target:
        raise SqsError(
            "InvalidAttributeValue", reason.format(value, "Invalid value for deadLetterTargetArn.")
        )
    if isinstance(max_receive_count, str) and max_receive_count.isascii() and max_receive_count.isdigit():
        max_receive_count = int(max_receive_count)
    if isinstance(max_receive_count, bool) or not isinstance(max_receive_count, int):
        max_receive_count = 0  # not a whole number: out of range below
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
    for name, value in (("MessageGroupId", group_id), ("MessageDeduplicationId", dedup_id)):
        if value and not MESSAGE_TOKEN.fullmatch(value):  # an empty one counts as absent
            raise invalid(
                f"Value {value} for parameter {name} is invalid. Reason: it must be 1 to 128 "
                "alphanumeric or punctuation characters."
            )
    delay = int_parameter(params, "DelaySeconds", queue.number("DelaySeconds"), 0, 900)
    if queue.fifo:
        if not group_id:
            raise missing("MessageGroupId")
        if params.get("DelaySeconds", 0) != 0:  # a zero asks for no delay of its own: accepted
            raise invalid(
                f"Value {params['DelaySeconds']} for parameter DelaySeconds is invalid. "
                "Reason: The request include parameter that is not valid for this queue type."
            )
        delay = queue.number("DelaySeconds")  # FIFO queues delay on the queue level only
        if not dedup_id:
            if queue.attributes.get("ContentBasedDeduplication") != "true":
                raise invalid(NO_DEDUPLICATION_ID)
            dedup_id = hashlib.sha256(body.encode()).hexdigest()
    elif dedup_id:
        raise invalid(
            "Value for parameter MessageDeduplicationId is invalid. "
            "Reason: The request include parameter that is not valid for this queue type."
        )
    return OutgoingMessage(body, attributes, group_id, dedup_id if queue.fifo else None, delay)


def fifo_batch_entries(queue: Queue, entries: list[dict[str, Any]]) -> None:
    """A FIFO batch whose entry lacks its MessageGroupId, or its MessageDeduplicationId without
    content-based deduplication, fails as a whole (not just that entry), as SQS does."""
    content_based = queue.attributes.get("ContentBasedDeduplication") == "true"
    for entry in entries:
        if not entry.get("MessageGroupId"):
            raise invalid("The request must contain the parameter MessageGroupId.")
        if not (entry.get("MessageDeduplicationId") or content_based):
            raise invalid(NO_DEDUPLICATION_ID)


def message_attributes_size(attributes: Mapping[str, Any]) -> int:
    """The bytes the attributes add to a message, once each is valid: names, data types and
    values as the SQS Developer Guide's "Message attribute components" describes them."""
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        raise invalid(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{MAX_MESSAGE_ATTRIBUTES}]."
        )
    size = 0
    for name, value in attributes.items():
        message_attribute_name(name)
        data_type = value.get("DataType")
        if not data_type:
            raise invalid(f"The message attribute '{name}' must contain a non-empty attribute type.")
        if (
            len(data_type) > MAX_ATTRIBUTE_NAME
            or not ATTRIBUTE_DATA_TYPE.fullmatch(data_type)
            or FORBIDDEN_BODY_CHARACTER.search(data_type)
        ):
            raise invalid(
                f"The type of message (user) attribute '{name}' is invalid. You must use only the "
                "following supported type prefixes: Binary, Number, String."
            )
        size += len(name.encode()) + len(data_type.encode()) + len(attribute_content(name, data_type, value))
    return size


def message_attribute_name(name: str) -> None:
    reason = None
    if not ATTRIBUTE_NAME.fullmatch(name):
        reason = f"it must be 1 to {MAX_ATTRIBUTE_NAME} letters, digits, underscores, hyphens or periods"
    elif name.lower().startswith(RESERVED_ATTRIBUTE_PREFIXES):
        reason = "the prefixes AWS. and Amazon. are reserved"
    elif name.startswith(".") or name.endswith(".") or ".." in name:
        reason = "it must not start or end with a period, nor have periods in a sequence"
    if reason:
        raise invalid(f"The message attribute name '{name}' is invalid. Reason: {reason}.")


def attribute_content(name: str, data_type: str, value: Mapping[str, Any]) -> bytes:
    """The value's bytes, once it is the non-empty value its type needs."""
    base_type = data_type.partition(".")[0]
    field = "BinaryValue" if base_type == "Binary" else "StringValue"
    content = value.get(field)
    if not content:
        raise invalid(
            f"The message attribute '{name}' with type '{base_type}' must contain a non-empty {field}."
        )
    if base_type == "Binary":
        return base64.b64decode(content)
    if FORBIDDEN_BODY_CHARACTER.search(content):
        raise SqsError("InvalidMessageContents", f"Invalid characters found in message attribute '{name}'.")
    if base_type == "Number" and not NUMBER.fullmatch(content):
        raise invalid(f"Can't cast the value of message (user) attribute '{name}' to a number.")
    return content.encode()
