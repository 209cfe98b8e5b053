"""Pydantic models at the edges: the API body, the queue message, the rows the reader returns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

# The API's limits. openapi.yaml's request model states the same rules so that API Gateway
# rejects most bad bodies before a function runs; a test keeps the two in agreement.
MAX_BODY_BYTES = 64 * 1024
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_JSON_BYTES = 16 * 1024
# Nesting inside attributes; databases cap JSON depth (MariaDB at 32, MySQL at 100).
MAX_ATTRIBUTES_DEPTH = 8
# The body's own object is one level more: ingest.rest refuses anything deeper before parsing it.
MAX_DOCUMENT_DEPTH = MAX_ATTRIBUTES_DEPTH + 1
# Integers a 64-bit float holds exactly (RFC 7493, I-JSON): every JSON reader gets back what was sent.
MAX_SAFE_INTEGER = 2**53 - 1

CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# The WHATWG HTML "valid e-mail address" grammar: a well-defined syntax check without a DNS lookup.
EMAIL_PATTERN = (
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
PHONE_PATTERN = r"^\+?[0-9 ()-]{3,32}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
RequestId = Annotated[str, StringConstraints(pattern=REQUEST_ID_PATTERN)]


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _attributes_fit(attributes: dict[str, Any]) -> dict[str, Any]:
    if _depth(attributes) > MAX_ATTRIBUTES_DEPTH:
        raise ValueError(f"must nest objects and arrays at most {MAX_ATTRIBUTES_DEPTH} levels deep")
    encoded = json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode()
    if len(encoded) > MAX_ATTRIBUTES_JSON_BYTES:
        raise ValueError(f"must encode to at most {MAX_ATTRIBUTES_JSON_BYTES} bytes of JSON")
    return attributes


class CustomerIn(BaseModel):
    """The body of POST /customers."""

    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: CustomerId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    email: Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)] | None = None
    phone: Annotated[str, StringConstraints(max_length=32, pattern=PHONE_PATTERN)] | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    attributes: Annotated[
        dict[str, Any], Field(max_length=MAX_ATTRIBUTES), AfterValidator(_attributes_fit)
    ] = Field(default_factory=dict)

    @field_validator("name", "email", "phone", "address", mode="before")
    @classmethod
    def _absent_rather_than_null(cls, value: object) -> object:
        # null would be stored as an absent field, not as sent (and API Gateway's model refuses it).
        if value is None:
            raise ValueError("leave the field out rather than send null")
        return value


class QueueMessage(BaseModel):
    """The body of one SQS message: what the producer accepted, as the consumer will store it."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId
    customer_id: CustomerId
    accepted_at: Annotated[int, Field(gt=0, description="producer clock, microseconds since the epoch")]
    payload: dict[str, Any]


def naive_utc(microseconds: int) -> datetime:
    """Microseconds since the epoch as a naive UTC datetime, the form DATETIME(6) columns take."""
    seconds, micros = divmod(microseconds, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros, tzinfo=None)


class Accepted(BaseModel):
    """The 202 reply of POST /customers."""

    request_id: str
    customer_id: str
    status: str = "accepted"


class CustomerProfile(BaseModel):
    customer_id: str
    request_id: str
    accepted_at: datetime
    updated_at: datetime
    payload: dict[str, Any]


class CommittedRecord(BaseModel):
    request_id: str
    customer_id: str
    status: str = "committed"
    accepted_at: datetime
    committed_at: datetime
    payload: dict[str, Any]
