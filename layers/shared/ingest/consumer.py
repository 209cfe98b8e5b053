"""The consumer's logic: turn one SQS batch into one database transaction and say which records failed.

FIFO rules the shape of it (ingest.fifo): within a message group nothing may be stored after a
record that failed, so a group is blocked at its first failure and the rest of it is retried with
it. Other groups go on. When the database itself is away the whole batch waits in the queue, hidden
for a delay that grows with each receive up to a small cap, so the backlog resumes within that cap
of the database's return and an hour-long outage stays inside maxReceiveCount.
The consumer owns that rule and answers the event source mapping itself
(BatchOutcome.batch_item_failures).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NotRequired, Protocol, TypedDict

from aws_lambda_powertools import Logger
from pydantic import TypeAdapter, ValidationError

from ingest.config import ConsumerSettings
from ingest.connection import Database, DatabaseUnavailable, error_label, is_transient, worst_case_s
from ingest.fifo import blocked_by_failures
from ingest.models import QueueMessage
from ingest.repository import StoreResult, store_batch
from ingest.retry import Deadline, call_with_retries, growing_jitter

logger = Logger(child=True)

# Attempts of a batch's transaction within one invocation when a statement fails transiently.
STATEMENT_ATTEMPTS = 4
# Round trips of one attempt of store_batch once connected: BEGIN, the two statements, COMMIT.
STORE_ROUND_TRIPS = 4
# Entries SQS takes in one ChangeMessageVisibilityBatch.
VISIBILITY_BATCH_SIZE = 10
# Built once: model_validate_json goes through a wrapper on every record.
_QUEUE_MESSAGE = TypeAdapter(QueueMessage)


class ReceivedAttributes(Protocol):
    @property
    def message_group_id(self) -> str | None: ...
    @property
    def approximate_receive_count(self) -> str: ...


class ReceivedRecord(Protocol):
    """What the consumer needs of an SQS record (Powertools' SQSRecord has it)."""

    @property
    def message_id(self) -> str: ...
    @property
    def receipt_handle(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def attributes(self) -> ReceivedAttributes: ...


class VisibilityEntry(TypedDict):
    Id: str
    ReceiptHandle: str
    VisibilityTimeout: NotRequired[int]


class QueueClient(Protocol):
    """The two SQS calls the consumer makes itself (boto3's SQS client has them)."""

    def change_message_visibility_batch(
        self, *, QueueUrl: str, Entries: Sequence[VisibilityEntry]
    ) -> Mapping[str, Any]: ...
    def send_message(
        self,
        *,
        QueueUrl: str,
        MessageBody: str,
        MessageGroupId: str = ...,
        MessageDeduplicationId: str = ...,
    ) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch: the counts for the metrics, and the records SQS must deliver again."""

    inserted: int
    duplicates: int
    database_unavailable: bool
    # message id -> why it failed, in batch order; records of a blocked group say which record blocked it
    failed: dict[str, str]
    poison: list[str]
    # poison records this consumer moved to the dead-letter queue itself
    # (see Consumer._move_to_dead_letter_queue_if_due)
    dead_lettered: list[str]

    def batch_item_failures(self) -> dict[str, list[dict[str, str]]]:
        """The partial batch response: the failed records stay in the queue, the others are deleted.

        Reported even when every record failed (the database is away), rather than raised, so the
        function does not count an error for what the queue is there to absorb.
        """
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


class _Parsed(NamedTuple):  # ten per batch: a tuple is built in half a dataclass's time
    record: ReceivedRecord
    message: QueueMessage | None  # None: the body is not a queue message (poison)
    problem: str = ""


@dataclass(frozen=True)
class _Stored:
    inserted: int = 0
    duplicates: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # poison the database refused: id -> why
    dead_lettered: list[str] = field(default_factory=list)
    database_unavailable: bool = False  # the database could not be reached; nothing after was tried


def _group_of(record: ReceivedRecord) -> str | None:
    return record.attributes.message_group_id


def _receive_count(record: ReceivedRecord) -> int:
    return int(record.attributes.approximate_receive_count or 1)


def _parse(record: ReceivedRecord) -> _Parsed:
    try:
        return _Parsed(record, _QUEUE_MESSAGE.validate_json(record.body))
    except ValidationError as error:
        fields = sorted({".".join(str(part) for part in e["loc"]) or "body" for e in error.errors()})
        logger.error("invalid message body", message_id=record.message_id, fields=fields)
        return _Parsed(record, None, f"invalid message: {', '.join(fields)}")


class OutOfTime(DatabaseUnavailable):
    """No database attempt can end before the invocation must answer: the records wait in the queue,
    as in an outage (they are not poison)."""


def _log_unavailable(error: DatabaseUnavailable) -> None:
    logger.warning("database unavailable: whole batch left in the queue", reason=str(error))


def attempt_worst_case_s(settings: ConsumerSettings) -> float:
    """The longest one attempt of a batch's transaction can take, every step just under its timeout."""
    return worst_case_s(settings.database, STORE_ROUND_TRIPS)


class Consumer:
    def __init__(
        self, database: Database, settings: ConsumerSettings, sqs: QueueClient, *, sqs_call_s: float
    ) -> None:
        """`sqs_call_s`: the longest one call of `sqs` can take (its client's attempts and timeouts)."""
        self.database = database
        self.settings = settings
        self.sqs = sqs
        self.sqs_call_s = sqs_call_s
        self._attempt_s = attempt_worst_case_s(settings)

    def process(self, records: Sequence[ReceivedRecord], deadline: Deadline | None = None) -> BatchOutcome:
        """Store the batch and hide its failed records for their backoff, all of it by `deadline`.

        The time the retry delays may take (one ChangeMessageVisibilityBatch per ten records) is kept
        aside; before that, no database attempt or dead-letter move starts unless it can end, and
        every socket operation ends by then. Records that were not tried fail as in an outage.
        """
        work_deadline = deadline
        if deadline is not None:
            calls = math.ceil(len(records) / VISIBILITY_BATCH_SIZE)
            work_deadline = deadline.earlier_by(calls * self.sqs_call_s)
        parsed = [_parse(record) for record in records]
        unreadable = [entry for entry in parsed if entry.message is None]
        moved, invalid = self._set_aside_unreadable(unreadable, work_deadline)
        batch = [(record.message_id, _group_of(record)) for record in records]
        blocked = blocked_by_failures(batch, invalid)
        stored = self._store(
            [
                (entry.record, entry.message)
                for entry in parsed
                if entry.message is not None and entry.record.message_id not in blocked
            ],
            work_deadline,
        )
        reasons = invalid | stored.rejected
        for message_id, blocker in blocked_by_failures(batch, reasons).items():
            reasons[message_id] = f"after failed message {blocker}"
        dead_lettered = [*moved, *stored.dead_lettered]
        if stored.database_unavailable:
            # The whole batch waits in the queue (storing it again later is harmless: primary key),
            # except what is in the dead-letter queue already: reported failed, it would be moved again.
            reasons = {
                message_id: reasons.get(message_id, "database unavailable")
                for message_id, _ in batch
                if message_id not in dead_lettered
            }
        failed = {message_id: reasons[message_id] for message_id, _ in batch if message_id in reasons}
        if failed:
            self._delay_retries(self._retry_delays(records, failed, stored.database_unavailable))
        return BatchOutcome(
            inserted=stored.inserted,
            duplicates=stored.duplicates,
            database_unavailable=stored.database_unavailable,
            failed=failed,
            poison=[*invalid, *stored.rejected],
            dead_lettered=dead_lettered,
        )

    def _set_aside_unreadable(
        self, unreadable: Sequence[_Parsed], deadline: Deadline | None
    ) -> tuple[list[str], dict[str, str]]:
        """Invalid messages: the ids moved to the dead-letter queue, and the others with why they fail."""
        moved: list[str] = []
        failed: dict[str, str] = {}
        for entry in unreadable:
            if self._move_to_dead_letter_queue_if_due(entry.record, deadline):
                moved.append(entry.record.message_id)
            else:
                failed[entry.record.message_id] = entry.problem
        return moved, failed

    def _store(
        self, writable: Sequence[tuple[ReceivedRecord, QueueMessage]], deadline: Deadline | None
    ) -> _Stored:
        if not writable:
            return _Stored()
        try:
            result = self._store_on_live_connection([message for _, message in writable], deadline)
        except DatabaseUnavailable as error:
            _log_unavailable(error)
            return _Stored(database_unavailable=True)
        except Exception as error:
            # The database rejected something in the batch: find which, one record per transaction.
            logger.warning("batch rejected; storing its records one by one", error=error_label(error))
            return self._store_one_by_one(writable, deadline)
        return _Stored(inserted=result.inserted, duplicates=result.duplicates)

    def _store_one_by_one(
        self, writable: Sequence[tuple[ReceivedRecord, QueueMessage]], deadline: Deadline | None
    ) -> _Stored:
        inserted = duplicates = 0
        rejected: dict[str, str] = {}
        dead_lettered: list[str] = []
        batch = [(record.message_id, _group_of(record)) for record, _ in writable]
        for record, message in writable:
            if record.message_id in blocked_by_failures(batch, rejected):
                continue
            try:
                result = self._store_on_live_connection([message], deadline)
            except DatabaseUnavailable as error:
                _log_unavailable(error)
                return _Stored(inserted, duplicates, rejected, dead_lettered, database_unavailable=True)
            except Exception as error:
                if self._move_to_dead_letter_queue_if_due(record, deadline):
                    dead_lettered.append(record.message_id)
                else:
                    rejected[record.message_id] = f"rejected by the database: {error_label(error)}"
                    logger.error("record rejected by the database", message_id=record.message_id)
                continue
            inserted += result.inserted
            duplicates += result.duplicates
        return _Stored(inserted, duplicates, rejected, dead_lettered)

    def _store_on_live_connection(
        self, messages: Sequence[QueueMessage], deadline: Deadline | None
    ) -> StoreResult:
        """store_batch, tried again after a transient statement error, on a new connection.

        That covers a reused connection that turns out to be dead, and InnoDB deadlocks between
        concurrent consumers (their gap locks on the two tables: with five consumers on MariaDB,
        about 1 batch in 170 deadlocked, 1 in 750 twice in a row; retries are paused by a few random
        milliseconds so that the same two do not meet again). Failing to connect is not retried
        here: that is an outage, and the batch waits in the queue. A retry after a failed COMMIT may
        find the batch already stored; the primary key makes that harmless (rows count as duplicates).
        An attempt starts only if it can end by the deadline, every step taking just under its timeout.
        """

        def store_on_a_connection_known_good() -> StoreResult:
            if deadline is not None and not deadline.allows(self._attempt_s):
                raise OutOfTime(f"less than the {self._attempt_s} s of a database attempt left")
            try:
                return store_batch(self.database.connection(deadline), messages)
            except Exception as error:
                if is_transient(error):
                    self.database.discard()
                raise

        try:
            return call_with_retries(
                store_on_a_connection_known_good,
                retry_if=is_transient,
                attempts=STATEMENT_ATTEMPTS,
                pause_s=growing_jitter(0.01, 0.05),
            )
        except Exception as error:
            if not is_transient(error):
                raise
            raise DatabaseUnavailable(str(error)) from error

    def _move_to_dead_letter_queue_if_due(self, record: ReceivedRecord, deadline: Deadline | None) -> bool:
        """Once a poison record has had poison_receive_count receives, move it to the dead-letter queue.

        SQS's own redrive comes only at maxReceiveCount, which is sized for a long database outage
        (promise 6), so poison would hold its customer back far too long; and it would take the
        records queued behind it in its FIFO group too, received and failed with it every time.
        Moved here, the poison is reported done and the rest of its group is stored in this very
        batch. A record held through an outage may pass the count before it is first rejected: it
        moves on that rejection. If the move fails, or could not end by the deadline, the record fails
        as before.
        """
        if _receive_count(record) < self.settings.poison_receive_count:
            return False
        if deadline is not None and not deadline.allows(self.sqs_call_s):
            logger.warning("no time left to move a poison record to the dead-letter queue")
            return False
        message = {"QueueUrl": self.settings.dead_letter_queue_url, "MessageBody": record.body}
        group = _group_of(record)
        if group is not None:
            message["MessageGroupId"] = group
            # The source message's id, as SQS's own redrive to a FIFO dead-letter queue uses (Amazon SQS
            # Developer Guide, "Learn how to configure a dead-letter queue redrive"): a redelivery of
            # this message is parked once, while the same record redriven and refused again is a new
            # message with a new id. The producer's deduplication id would make that second move a
            # duplicate within five minutes: SQS would drop it and the record would be nowhere.
            message["MessageDeduplicationId"] = record.message_id
        try:
            self.sqs.send_message(**message)
        except Exception as error:  # the record stays failed and SQS's own redrive still applies
            logger.warning(
                "could not move a poison record to the dead-letter queue", error=type(error).__name__
            )
            return False
        logger.warning("poison record moved to the dead-letter queue", message_id=record.message_id)
        return True

    def _retry_delays(
        self, records: Sequence[ReceivedRecord], failed: Mapping[str, str], database_unavailable: bool
    ) -> list[VisibilityEntry]:
        """How long each failed record stays hidden before its next receive.

        Database down: backoff on the receive count, doubling up to a small cap, so the backlog is
        received again within the cap of the database's return, and an hour at the cap still uses
        far fewer receives than maxReceiveCount. Poison: the short base delay, so the record reaches
        the dead-letter queue soon and its customer's later records flow again.
        """
        retry = self.settings.retry
        return [
            {
                "Id": str(index),
                "ReceiptHandle": record.receipt_handle,
                "VisibilityTimeout": (
                    retry.delay_after(_receive_count(record)) if database_unavailable else retry.base_seconds
                ),
            }
            for index, record in enumerate(record for record in records if record.message_id in failed)
        ]

    def _delay_retries(self, entries: Sequence[VisibilityEntry]) -> None:
        """Set the records' visibility timeouts (best effort: the queue's own timeout applies otherwise)."""
        for start in range(0, len(entries), VISIBILITY_BATCH_SIZE):
            chunk = entries[start : start + VISIBILITY_BATCH_SIZE]
            try:
                reply = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.settings.queue_url, Entries=chunk
                )
            except Exception as error:
                logger.warning("could not delay retries; queue visibility timeout applies", error=str(error))
                continue
            if reply.get("Failed"):
                logger.warning("some retry delays were not set", failed=len(reply["Failed"]))
