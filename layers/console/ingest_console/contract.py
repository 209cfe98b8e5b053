"""The demo console's contract: what the page asks, and what a backend (local stack or AWS) answers.

One JSON API (under /console/api/) serves the page; two backends implement it: the local stack's
(local/console.py: the Stack's fault methods, its MariaDB instances, the SQS emulator) and the deployed
stack's (functions/console: boto3 against RDS and SQS, per-instance counts from inside the VPC).

The page is the client of the ingest API: it sends every request itself (fetch, with the signed-in
user's token on AWS) and keeps what it was told. So "acknowledged" is exactly what a client saw, and
the backend only answers for the other side: which of those request ids the ledger holds.

Every request of a console run carries the run in its data, so the backend can count the run alone:
customer ids start with `run_prefix(run_id)`, and `attributes.console_key` is the request's
Idempotency-Key (a second row for one key is a duplicate, whatever its request_id).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ingest.errors import RequestError
from ingest.models import RequestId

# Request ids the page may ask about in one reconcile call (the page pages through longer lists): as
# many of the longest request ids as fit in a request body (MAX_BODY_BYTES), with room to spare.
MAX_RECONCILE_IDS = 900
RUN_ID = re.compile(r"^[a-z0-9]{6,16}$")
RATE_LIMITS_RPS = (1, 200)  # what the page offers; the client-side generator enforces it
# The payload field that holds a console request's Idempotency-Key (a second row for one key is a
# duplicate): the page puts it there, both backends count distinct keys by it.
CONSOLE_KEY_PATH = "$.attributes.console_key"
# Dead-lettered messages looked at per reconciliation (a FIFO queue shows one per customer anyway).
DEAD_LETTERS_PEEKED = 100


def run_prefix(run_id: str) -> str:
    """The customer-id prefix of every request a console run sends."""
    return f"console-{run_id}-"


class Conflict(RequestError):
    """The request clashes with work in progress (a fault, a cluster not yet available); it may succeed
    once that has ended (HTTP 409)."""


class FaultInProgress(Conflict):
    """A fault is running; another cannot start until it has ended (HTTP 409)."""


class Fault(BaseModel):
    """A failure the console can cause."""

    name: str  # failover, restart, upgrade, consumer-crash, queue-outage, poison
    label: str  # the button's text
    description: str
    seconds: tuple[int, int, int] | None = None  # (min, default, max) of its length, None if fixed


def failover_fault(how: str, seconds: tuple[int, int, int] | None = None) -> Fault:
    """The failover both backends offer, `how` saying how this one causes it."""
    return Fault(
        name="failover",
        label="Fail over",
        description=f"The writer fails and the reader takes over as the writer: {how}",
        seconds=seconds,
    )


def restart_fault(how: str, seconds: tuple[int, int, int] | None = None) -> Fault:
    """The writer restart both backends offer, `how` saying how this one causes it."""
    return Fault(
        name="restart",
        label="Restart the writer",
        description=f"The writer reboots, as when a patch is applied, and keeps its role: {how}",
        seconds=seconds,
    )


class FaultRun(BaseModel):
    name: str
    seconds: float | None
    started_at: datetime
    ended_at: datetime | None = None
    error: str | None = None  # why it failed, if it did


class Instance(BaseModel):
    """One database instance as the console shows it."""

    name: str  # the instance identifier (db-a / db-b locally)
    role: Literal["writer", "reader", "unknown"]
    availability_zone: str | None
    status: str  # "available", "rebooting", "down", ... (RDS's DBInstanceStatus on AWS)
    committed_rows: int | None  # the run's rows counted on this instance; None when it did not answer


class QueueState(BaseModel):
    visible: int | None
    in_flight: int | None
    dead_letter: int | None
    oldest_age_s: float | None  # age of the oldest message in the queue


class ConsoleEvent(BaseModel):
    """A line of the timeline from the backend's side (the page adds the ones it saw itself)."""

    at: datetime
    source: Literal["console", "database", "queue", "rds"]
    message: str


class Status(BaseModel):
    backend: Literal["local", "aws"]
    at: datetime
    database_writable: bool  # the consumer's path to the writer works
    instances: list[Instance]
    queue: QueueState
    fault: FaultRun | None  # the running fault, or the last one
    events: list[ConsoleEvent]  # the backend's events since the `since` the page asked for


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(pattern=RUN_ID.pattern)
    request_ids: list[RequestId] = Field(max_length=MAX_RECONCILE_IDS)


class RunSummary(BaseModel):
    """The database side of a run's reconciliation, read through the read-only user."""

    rows: int  # the run's rows in customer_records
    distinct_keys: int  # distinct attributes.console_key among them
    duplicates: int  # rows - distinct_keys
    stale_profiles: int  # the run's customers whose profile is not their newest record
    lag_p50_ms: float | None  # committed_at - accepted_at
    lag_p99_ms: float | None


class Reconciliation(BaseModel):
    committed: list[str]  # the asked request ids the ledger holds
    dead_lettered: list[str]  # the asked request ids parked in the dead-letter queue
    run: RunSummary


class ConsoleBackend(Protocol):
    """What the console API needs from the stack it shows. Both implementations honour every method."""

    name: Literal["local", "aws"]

    def faults(self) -> list[Fault]:
        """The failures this backend can cause."""
        ...

    def status(self, run_id: str | None, since: datetime | None) -> Status:
        """Roles, queue, per-instance counts of the run (if any), the backend's events after `since`."""
        ...

    def start_fault(self, name: str, seconds: float | None) -> FaultRun:
        """Start a fault and return at once; FaultInProgress while one runs, InvalidInput if unknown."""
        ...

    def reconcile(self, request: ReconcileRequest) -> Reconciliation:
        """Which of the asked request ids are committed or dead-lettered, and the run's totals."""
        ...
