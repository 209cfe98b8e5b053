"""The consumer's logic: turn one SQS batch into one database transaction and say which records failed.

FIFO rules the shape of it: within a message group nothing may be stored after a record that
failed, so a group is blocked at its first failure and the rest of it is retried with it. Other
groups go on. When the database itself is away the whole batch waits in the queue, hidden for a
delay that grows with each receive, so even an hour-long outage stays inside maxReceiveCount.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from ingest.config import RetrySettings
from ingest.connection import Database, DatabaseUnavailable, error_label, is_transient
from ingest.models import QueueMessage
from ingest.repository import StoreResult, store_batch

# Attempts of a batch's transaction within one invocation when a statement fails transiently.
STATEMENT_ATTEMPTS = 4


class ReceivedRecord(Protocol):
    """What the consumer needs of an SQS record (Powertools' SQSRecord has it)."""

    @property
    def message_id(self) -> str: ...
    @property
    def receipt_handle(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def attributes(self) -> Any: ...


class QueueClient(Protocol):
    """The two SQS calls the consumer makes itself (boto3's SQS client has them)."""

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]: ...
    def send_message(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass
class BatchOutcome:
    inserted: int = 0
    duplicates: int = 0
    database_unavailable: bool = False
    # message id -> why it failed; records of a blocked group say which record blocked it
    failed: dict[str, str] = field(default_factory=dict)
    poison: list[str] = field(default_factory=list)
    # poison records this consumer moved to the dead-letter queue itself (see Consumer._park)
    dead_lettered: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    record: ReceivedRecord
    message: QueueMessage | None
    group: str | None


def _group_of(record: ReceivedRecord) -> str | None:
    return record.attributes.message_group_id


def _receive_count(record: ReceivedRecord) -> int:
    return int(record.attributes.approximate_receive_count or 1)


class Consumer:
    def __init__(
        self,
        database: Database,
        retry: RetrySettings,
        queue_url: str | None = None,
        sqs: QueueClient | None = None,
        logger: Any = None,
        dead_letter_queue_url: str | None = None,
        max_receive_count: int | None = None,
    ) -> None:
        self.database = database
        self.retry = retry
        self.queue_url = queue_url
        self.sqs = sqs
        self.logger = logger
        self.dead_letter_queue_url = dead_letter_queue_url
        self.max_receive_count = max_receive_count

    def _log(self, level: str, message: str, **extra: Any) -> None:
        if self.logger is not None:
            getattr(self.logger, level)(message, extra=extra)

    def process(self, records: Sequence[ReceivedRecord]) -> BatchOutcome:
        outcome = BatchOutcome()
        entries = [self._parse(record, outcome) for record in records]
        try:
            self._store(entries, outcome)
        except DatabaseUnavailable as error:
            outcome.database_unavailable = True
            for entry in entries:
                outcome.failed.setdefault(entry.record.message_id, "database unavailable")
            self._log("warning", "database unavailable: whole batch left in the queue", reason=str(error))
        self._delay_retries(records, outcome)
        return outcome

    def _parse(self, record: ReceivedRecord, outcome: BatchOutcome) -> _Entry:
        try:
            message = QueueMessage.model_validate_json(record.body)
        except ValidationError as error:
            fields = sorted({".".join(str(part) for part in e["loc"]) or "body" for e in error.errors()})
            self._log("error", "invalid message body", message_id=record.message_id, fields=fields)
            message = None
            if self._park(record):
                outcome.dead_lettered.append(record.message_id)
            else:
                outcome.failed[record.message_id] = f"invalid message: {', '.join(fields)}"
                outcome.poison.append(record.message_id)
        return _Entry(record=record, message=message, group=_group_of(record))

    def _block_after_failures(self, entries: Sequence[_Entry], outcome: BatchOutcome) -> None:
        """Fail every record that follows a failed record of its group: FIFO order within a group."""
        blocked_by: dict[str, str] = {}
        for entry in entries:
            message_id = entry.record.message_id
            if entry.group is not None and entry.group in blocked_by:
                outcome.failed.setdefault(message_id, f"after failed message {blocked_by[entry.group]}")
            elif message_id in outcome.failed and entry.group is not None:
                blocked_by[entry.group] = message_id

    def _store(self, entries: Sequence[_Entry], outcome: BatchOutcome) -> None:
        self._block_after_failures(entries, outcome)
        writable = [e for e in entries if e.message is not None and e.record.message_id not in outcome.failed]
        if not writable:
            return
        try:
            result = self._store_on_live_connection([entry.message for entry in writable])
        except DatabaseUnavailable:
            raise
        except Exception as error:
            # The database rejected something in the batch: find which, one record per transaction.
            self._log("warning", "batch rejected; storing its records one by one", error=error_label(error))
            self._store_one_by_one(writable, outcome)
            return
        outcome.inserted += result.inserted
        outcome.duplicates += result.duplicates

    def _store_on_live_connection(self, messages: Sequence[QueueMessage]) -> StoreResult:
        """store_batch, tried again after a transient statement error, on a new connection.

        That covers a reused connection that turns out to be dead, and InnoDB deadlocks between
        concurrent consumers (their gap locks on the two tables: with five consumers on MariaDB,
        about 1 batch in 170 deadlocked, 1 in 750 twice in a row; retries are paused by a few random
        milliseconds so that the same two do not meet again). Failing to connect is not retried
        here: that is an outage, and the batch waits in the queue. A retry after a failed COMMIT may
        find the batch already stored; the primary key makes that harmless (rows count as duplicates).
        """
        attempt = 1
        while True:
            try:
                return store_batch(self.database.connection(), messages)
            except Exception as error:
                if isinstance(error, DatabaseUnavailable) or not is_transient(error):
                    raise
                self.database.discard()
                if attempt == STATEMENT_ATTEMPTS:
                    raise DatabaseUnavailable(str(error)) from error
            # A short random pause, so two deadlocked consumers do not collide again at once.
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter, not security
            attempt += 1

    def _store_one_by_one(self, writable: Sequence[_Entry], outcome: BatchOutcome) -> None:
        for entry in writable:
            if entry.record.message_id in outcome.failed:  # blocked by an earlier record of its group
                continue
            try:
                result = self._store_on_live_connection([entry.message])
            except DatabaseUnavailable:
                raise
            except Exception as error:
                if self._park(entry.record):
                    outcome.dead_lettered.append(entry.record.message_id)
                    continue
                outcome.failed[entry.record.message_id] = f"rejected by the database: {error_label(error)}"
                outcome.poison.append(entry.record.message_id)
                self._log("error", "record rejected by the database", message_id=entry.record.message_id)
                self._block_after_failures(writable, outcome)
                continue
            outcome.inserted += result.inserted
            outcome.duplicates += result.duplicates

    def _park(self, record: ReceivedRecord) -> bool:
        """On a poison record's last allowed receive, move it to the dead-letter queue here.

        Left to SQS, the redrive would take the records queued behind it in its FIFO group too: they
        are received and failed with it every time, so they reach maxReceiveCount together. Moved
        here, on the same receive SQS would have moved it, the poison is reported done and the rest
        of its group is stored in this very batch. If the move fails, the record fails as before.
        """
        if (
            self.sqs is None
            or not self.dead_letter_queue_url
            or self.max_receive_count is None
            or _receive_count(record) < self.max_receive_count
        ):
            return False
        message = {"QueueUrl": self.dead_letter_queue_url, "MessageBody": record.body}
        group = _group_of(record)
        if group is not None:
            message["MessageGroupId"] = group
            message["MessageDeduplicationId"] = (
                record.attributes.message_deduplication_id or record.message_id
            )
        try:
            self.sqs.send_message(**message)
        except Exception as error:  # the record stays failed and SQS's own redrive still applies
            self._log(
                "warning",
                "could not move a poison record to the dead-letter queue",
                error=type(error).__name__,
            )
            return False
        self._log("warning", "poison record moved to the dead-letter queue", message_id=record.message_id)
        return True

    def _delay_retries(self, records: Sequence[ReceivedRecord], outcome: BatchOutcome) -> None:
        """Hide failed records for a while before their next receive (best effort).

        Database down: exponential backoff on the receive count, so an outage of an hour uses far
        fewer receives than maxReceiveCount. Poison: the short base delay, so the record reaches the
        dead-letter queue soon and its customer's later records flow again.
        """
        if self.sqs is None or not self.queue_url or not outcome.failed:
            return
        entries = []
        for record in records:
            if record.message_id not in outcome.failed:
                continue
            if outcome.database_unavailable:
                delay = self.retry.delay_after(_receive_count(record))
            else:
                delay = self.retry.base_seconds
            entries.append(
                {"Id": str(len(entries)), "ReceiptHandle": record.receipt_handle, "VisibilityTimeout": delay}
            )
        for start in range(0, len(entries), 10):
            chunk = entries[start : start + 10]
            try:
                reply = self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=chunk)
            except Exception as error:
                self._log(
                    "warning", "could not delay retries; queue visibility timeout applies", error=str(error)
                )
                continue
            if reply.get("Failed"):
                self._log("warning", "some retry delays were not set", failed=len(reply["Failed"]))
