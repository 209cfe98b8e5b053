"""The queue store: every SQS action as a method, durable in SQLite.

Requests and replies are the JSON documents of the SQS JSON protocol, so the HTTP layer only
routes. Time comes from an injectable clock (seconds), so tests can make time pass instantly.

Cost per call is O(log n) in the queue's depth:
- standard queues receive through the index (queue_id, visible_at), which holds their messages
  only (those without a deduplication id): a FIFO receive would otherwise move ten of its
  entries for nothing;
- FIFO queues keep one row per non-empty message group with the time it can next deliver
  (`ready_at`: its head is visible and none of its messages is in flight), so a receive reads
  the first ready groups from an index instead of scanning messages or groups.
"""

import base64
import functools
import hashlib
import json
import re
import secrets
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from local.sqs.errors import SqsError, invalid, missing

ACCOUNT = "000000000000"
MAX_BATCH_ENTRIES = 10
DEDUP_INTERVAL_MS = 5 * 60 * 1000
PURGE_INTERVAL_MS = 60 * 1000
MAX_MOVE_CHUNK = 500  # messages moved per housekeeping step when no rate is given

# Name -> (default, minimum, maximum) for the numeric attributes SQS validates.
NUMERIC_ATTRIBUTES = {
    "DelaySeconds": (0, 0, 900),
    "MaximumMessageSize": (262144, 1024, 1048576),
    "MessageRetentionPeriod": (345600, 60, 1209600),
    "ReceiveMessageWaitTimeSeconds": (0, 0, 20),
    "VisibilityTimeout": (30, 0, 43200),
}
FIFO_ONLY_ATTRIBUTES = {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
STORED_ONLY_ATTRIBUTES = {  # accepted and returned, without effect here
    "Policy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "RedriveAllowPolicy",
}
COMPUTED_ATTRIBUTES = {
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
}
SETTABLE_ATTRIBUTES = (
    set(NUMERIC_ATTRIBUTES) | FIFO_ONLY_ATTRIBUTES | STORED_ONLY_ATTRIBUTES | {"RedrivePolicy"}
)
MESSAGE_SYSTEM_ATTRIBUTES = {
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
    "DeadLetterQueueSourceArn",
}

ACTIONS = (
    "CreateQueue GetQueueUrl ListQueues GetQueueAttributes SetQueueAttributes DeleteQueue PurgeQueue"
    " SendMessage SendMessageBatch ReceiveMessage DeleteMessage DeleteMessageBatch ChangeMessageVisibility"
    " ChangeMessageVisibilityBatch ListDeadLetterSourceQueues StartMessageMoveTask ListMessageMoveTasks"
    " CancelMessageMoveTask"
)
ACTION_METHODS = {
    action: "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", action).lower() for action in ACTIONS.split()
}
# Actions after which a long-polling receive may find messages.
WAKES_RECEIVERS = {
    "SendMessage",
    "SendMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "StartMessageMoveTask",
}

QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
# Characters SQS accepts in a body: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF
FORBIDDEN_BODY_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    attributes TEXT NOT NULL,          -- JSON object of the settable attributes
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: it is the FIFO sequence number
    queue_id INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    body_md5 TEXT NOT NULL,
    message_attributes TEXT,            -- JSON, as sent
    message_attributes_md5 TEXT,
    group_id TEXT,
    dedup_id TEXT,
    sent_at INTEGER NOT NULL,           -- all times are milliseconds since the epoch
    visible_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at INTEGER,
    receipt_token TEXT,
    dead_letter_source_queue_id INTEGER  -- set when redrive moved it here
);
DROP INDEX IF EXISTS messages_by_visibility;  -- of all messages, before standard_messages_by_visibility
CREATE INDEX IF NOT EXISTS standard_messages_by_visibility ON messages (queue_id, visible_at)
    WHERE dedup_id IS NULL;
CREATE INDEX IF NOT EXISTS messages_by_group ON messages (queue_id, group_id, id);
CREATE INDEX IF NOT EXISTS messages_in_flight ON messages (queue_id, group_id, visible_at)
    WHERE receive_count > 0;
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at);
CREATE TABLE IF NOT EXISTS message_groups (
    queue_id INTEGER NOT NULL,
    group_id TEXT NOT NULL,
    ready_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, group_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS message_groups_by_readiness ON message_groups (queue_id, ready_at);
CREATE TABLE IF NOT EXISTS deduplication (
    queue_id INTEGER NOT NULL,
    scope TEXT NOT NULL,                -- the message group, or '' for queue-wide scope
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue_id, scope, dedup_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deduplication_by_expiry ON deduplication (expires_at);
CREATE TABLE IF NOT EXISTS move_tasks (
    handle TEXT PRIMARY KEY,
    source_queue_id INTEGER NOT NULL,
    source_arn TEXT NOT NULL,
    destination_arn TEXT,
    rate INTEGER,
    status TEXT NOT NULL,
    moved INTEGER NOT NULL DEFAULT 0,
    to_move INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    failure_reason TEXT
);
"""


@dataclass
class Queue:
    id: int
    name: str
    attributes: dict[str, str]
    created_at: int
    modified_at: int
    last_purge_at: int = field(default=-PURGE_INTERVAL_MS)

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"

    def number(self, name: str) -> int:
        return int(self.attributes.get(name, NUMERIC_ATTRIBUTES[name][0]))

    @property
    def redrive(self) -> tuple[str, int] | None:
        """(dead-letter queue name, maxReceiveCount), or None without a redrive policy."""
        policy = self.attributes.get("RedrivePolicy")
        return parse_redrive_policy(policy) if policy else None


@functools.lru_cache(maxsize=64)
def parse_redrive_policy(policy: str) -> tuple[str, int]:
    parsed = json.loads(policy)
    return queue_name_from_arn(parsed["deadLetterTargetArn"]), int(parsed["maxReceiveCount"])


def queue_name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def message_attributes_md5(attributes: dict) -> str:
    """The digest SQS returns as MD5OfMessageAttributes (names sorted, length-prefixed fields)."""
    encoded = bytearray()
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        for text in (name, data_type):
            raw = text.encode()
            encoded += struct.pack(">I", len(raw)) + raw
        if "BinaryValue" in value:
            raw = base64.b64decode(value["BinaryValue"])
            encoded += b"\x02" + struct.pack(">I", len(raw)) + raw
        else:
            raw = value["StringValue"].encode()
            encoded += b"\x01" + struct.pack(">I", len(raw)) + raw
    return md5_hex(bytes(encoded))


def int_parameter(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if not isinstance(value, int) or not low <= value <= high:
        raise invalid(
            f"Value {value} for parameter {name} is invalid. Reason: Must be between {low} and {high}."
        )
    return value


def check_batch(entries: list, entry_name: str) -> None:
    if not entries:
        raise SqsError("EmptyBatchRequest", f"There should be at least one {entry_name} in the request.")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise SqsError(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {len(entries)}.",
        )
    seen = set()
    for entry in entries:
        entry_id = entry.get("Id", "")
        if not BATCH_ENTRY_ID.fullmatch(entry_id):
            raise SqsError(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                "It can be at most 80 letters long.",
            )
        if entry_id in seen:
            raise SqsError("BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.")
        seen.add(entry_id)


def marks(count: int) -> str:
    """Placeholders for `IN (...)` with `count` values."""
    return ", ".join("?" * count)


def batch_failure(entry_id: str, error: SqsError) -> dict:
    return {"Id": entry_id, "SenderFault": True, "Code": error.legacy_code, "Message": error.message}


class QueueStore:
    """All queues of one emulator, in one SQLite database. Thread-safe: calls are serialised,
    and ReceiveMessage long polls wait on a condition that sends and visibility changes signal."""

    def __init__(
        self,
        database: str,
        base_url: str = "http://127.0.0.1:9324",
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
    ):
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._database = database
        self._checkpointer: sqlite3.Connection | None = None
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL writes every commit to the log before returning: a killed process
        # loses nothing it acknowledged (only an operating-system crash could), without an fsync per call.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # A deep backlog's indexes stay in memory: page reads would otherwise dominate each call.
        self._db.execute("PRAGMA cache_size=-131072")
        self._db.execute("PRAGMA mmap_size=1073741824")
        self._db.execute("PRAGMA secure_delete=OFF")  # no need to zero deleted test messages on disk
        # The server checkpoints from its housekeeping thread (`checkpoint`), outside the calls;
        # a call checkpoints itself only if the log grows past this many pages without that.
        self._db.execute("PRAGMA wal_autocheckpoint=20000")
        self._db.executescript(SCHEMA)
        self._queues: dict[str, Queue] = {}
        for row in self._db.execute("SELECT * FROM queues"):
            self._queues[row["name"]] = Queue(
                row["id"], row["name"], json.loads(row["attributes"]), row["created_at"], row["modified_at"]
            )
        self._last_dedup_prune = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._checkpointer is not None:
                self._checkpointer.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database on a connection of its own, without
        the store's lock: calls go on meanwhile instead of paying for the copy and its fsync."""
        if self._database == ":memory:":
            return
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self._database, check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- dispatch -------------------------------------------------------------------------

    def handle(self, action: str, params: dict) -> dict:
        """Run one SQS action; raises SqsError for an error reply."""
        method_name = ACTION_METHODS.get(action)
        if method_name is None:
            raise SqsError("InvalidAction", f"The action {action} is not valid for this endpoint.")
        if action == "ReceiveMessage":
            return self._receive_message(params)  # takes the lock itself, to wait without holding it
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                reply = getattr(self, method_name)(params)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            if action in WAKES_RECEIVERS:
                self._changed.notify_all()
            return reply

    # ---- queues ---------------------------------------------------------------------------

    def queue_url(self, queue: Queue) -> str:
        return f"{self.base_url}/{ACCOUNT}/{queue.name}"

    def queue_arn(self, queue: Queue) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{queue.name}"

    def _queue(self, params: dict) -> Queue:
        url = params.get("QueueUrl")
        if not url:
            raise missing("QueueUrl")
        queue = self._queues.get(url.rstrip("/").rsplit("/", 1)[-1])
        if queue is None:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue

    def _validated_attributes(self, attributes: dict, fifo: bool) -> dict[str, str]:
        checked = {}
        for name, value in attributes.items():
            if name not in SETTABLE_ATTRIBUTES or (name in FIFO_ONLY_ATTRIBUTES and not fifo):
                raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
            value = str(value)
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
                value = self._validated_redrive_policy(value, fifo)
            checked[name] = value
        return checked

    def _validated_redrive_policy(self, value: str, fifo: bool) -> str:
        reason = "Value {} for parameter RedrivePolicy is invalid. Reason: {}"
        try:
            policy = json.loads(value)
            target, max_receive_count = policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])
        except (ValueError, KeyError, TypeError):
            raise SqsError(
                "InvalidAttributeValue", reason.format(value, "Redrive policy is not a dict.")
            ) from None
        if not 1 <= max_receive_count <= 1000:
            raise SqsError(
                "InvalidAttributeValue", reason.format(value, "Invalid value for maxReceiveCount.")
            )
        dead_letter_queue = self._queues.get(queue_name_from_arn(target))
        if dead_letter_queue is None:
            raise SqsError(
                "InvalidAttributeValue", reason.format(value, "Dead-letter target does not exist.")
            )
        if dead_letter_queue.fifo != fifo:
            raise SqsError(
                "InvalidAttributeValue",
                reason.format(value, "Dead-letter queue must be same type of queue as the source."),
            )
        return json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": max_receive_count}, separators=(",", ":")
        )

    def _create_queue(self, params: dict) -> dict:
        name = params.get("QueueName")
        if not name:
            raise missing("QueueName")
        fifo = name.endswith(".fifo")
        if not QUEUE_NAME.fullmatch(name.removesuffix(".fifo")) or len(name) > 80:
            raise invalid(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
            )
        requested = dict(params.get("Attributes") or {})
        if requested.get("FifoQueue", "false").lower() == "true" and not fifo:
            raise invalid("The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                          "or underscores, must end with .fifo suffix and be 1 to 80 in length.")  # fmt: skip
        if fifo:
            requested["FifoQueue"] = "true"
        attributes = self._validated_attributes(requested, fifo)
        existing = self._queues.get(name)
        if existing is not None:
            for key, value in attributes.items():
                if existing.attributes.get(key, self._default_attribute(key)) != value:
                    raise SqsError(
                        "QueueNameExists",
                        f"A queue already exists with the same name and a different value for {key}",
                    )
            return {"QueueUrl": self.queue_url(existing)}
        now = self.now_ms()
        cursor = self._db.execute(
            "INSERT INTO queues (name, attributes, created_at, modified_at) VALUES (?, ?, ?, ?)",
            (name, json.dumps(attributes), now, now),
        )
        queue = Queue(cursor.lastrowid, name, attributes, now, now)
        self._queues[name] = queue
        return {"QueueUrl": self.queue_url(queue)}

    @staticmethod
    def _default_attribute(name: str) -> str | None:
        if name in NUMERIC_ATTRIBUTES:
            return str(NUMERIC_ATTRIBUTES[name][0])
        return {
            "FifoQueue": "false",
            "ContentBasedDeduplication": "false",
            "DeduplicationScope": "queue",
            "FifoThroughputLimit": "perQueue",
        }.get(name)

    def _get_queue_url(self, params: dict) -> dict:
        queue = self._queues.get(params.get("QueueName") or "")
        if queue is None:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return {"QueueUrl": self.queue_url(queue)}

    def _list_queues(self, params: dict) -> dict:
        prefix = params.get("QueueNamePrefix", "")
        names = sorted(name for name in self._queues if name.startswith(prefix))
        start = int(params.get("NextToken") or 0)
        limit = params.get("MaxResults")
        page = names[start : start + limit] if limit else names[:1000]
        reply: dict = {}
        if page:
            reply["QueueUrls"] = [self.queue_url(self._queues[name]) for name in page]
        if limit and start + limit < len(names):
            reply["NextToken"] = str(start + limit)
        return reply

    def _get_queue_attributes(self, params: dict) -> dict:
        queue = self._queue(params)
        requested = set(params.get("AttributeNames") or [])
        known = SETTABLE_ATTRIBUTES | COMPUTED_ATTRIBUTES | {"All"}
        for name in requested - known:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
        if "All" in requested:
            requested = known
        return {"Attributes": self._queue_attributes(queue, requested)} if requested else {}

    def _queue_attributes(self, queue: Queue, requested: set[str]) -> dict[str, str]:
        attributes = {name: str(NUMERIC_ATTRIBUTES[name][0]) for name in NUMERIC_ATTRIBUTES}
        if queue.fifo:
            attributes.update(
                ContentBasedDeduplication="false", DeduplicationScope="queue", FifoThroughputLimit="perQueue"
            )
        attributes.update(queue.attributes)
        now = self.now_ms()
        attributes["QueueArn"] = self.queue_arn(queue)
        attributes["CreatedTimestamp"] = str(queue.created_at // 1000)
        attributes["LastModifiedTimestamp"] = str(queue.modified_at // 1000)
        # Counting walks the index range: fine for an occasional status call, never on the hot path.
        if requested & {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed"}:  # fmt: skip
            visible, in_flight, delayed = self._db.execute(
                "SELECT SUM(visible_at <= ?1), SUM(visible_at > ?1 AND receive_count > 0),"
                " SUM(visible_at > ?1 AND receive_count = 0) FROM messages WHERE queue_id = ?2",
                (now, queue.id),
            ).fetchone()
            attributes["ApproximateNumberOfMessages"] = str(visible or 0)
            attributes["ApproximateNumberOfMessagesNotVisible"] = str(in_flight or 0)
            attributes["ApproximateNumberOfMessagesDelayed"] = str(delayed or 0)
        return {name: value for name, value in attributes.items() if name in requested and value != ""}

    def _set_queue_attributes(self, params: dict) -> dict:
        queue = self._queue(params)
        requested = params.get("Attributes") or {}
        if "FifoQueue" in requested and str(requested["FifoQueue"]).lower() != str(queue.fifo).lower():
            raise SqsError("InvalidAttributeValue", "Invalid value for the parameter FifoQueue.")
        attributes = self._validated_attributes(requested, queue.fifo)
        queue.attributes.update(attributes)
        queue.attributes = {name: value for name, value in queue.attributes.items() if value != ""}
        queue.modified_at = self.now_ms()
        self._db.execute(
            "UPDATE queues SET attributes = ?, modified_at = ? WHERE id = ?",
            (json.dumps(queue.attributes), queue.modified_at, queue.id),
        )
        if "MessageRetentionPeriod" in attributes:
            self._db.execute(
                "UPDATE messages SET expires_at = sent_at + ? WHERE queue_id = ?",
                (int(attributes["MessageRetentionPeriod"]) * 1000, queue.id),
            )
        return {}

    def _delete_queue(self, params: dict) -> dict:
        queue = self._queue(params)
        for table in ("messages", "message_groups", "deduplication"):
            self._db.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue.id,))
        self._db.execute("DELETE FROM queues WHERE id = ?", (queue.id,))
        del self._queues[queue.name]
        return {}

    def _purge_queue(self, params: dict) -> dict:
        queue = self._queue(params)
        now = self.now_ms()
        if now - queue.last_purge_at < PURGE_INTERVAL_MS:
            raise SqsError(
                "PurgeQueueInProgress",
                f"Only one PurgeQueue operation on {queue.name} is allowed every 60 seconds.",
            )
        queue.last_purge_at = now
        for table in ("messages", "message_groups"):
            self._db.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue.id,))
        return {}

    def _list_dead_letter_source_queues(self, params: dict) -> dict:
        queue = self._queue(params)
        sources = sorted(
            other.name for other in self._queues.values() if other.redrive and other.redrive[0] == queue.name
        )
        return {"queueUrls": [self.queue_url(self._queues[name]) for name in sources]}

    # ---- sending --------------------------------------------------------------------------

    def _send_message(self, params: dict) -> dict:
        return self._send_one(self._queue(params), params)

    def _send_message_batch(self, params: dict) -> dict:
        queue = self._queue(params)
        entries = params.get("Entries") or []
        check_batch(entries, "SendMessageBatchRequestEntry")
        total = sum(len(entry.get("MessageBody", "").encode()) for entry in entries)
        if total > queue.number("MaximumMessageSize"):
            raise SqsError(
                "BatchRequestTooLong",
                f"Batch requests cannot be longer than {queue.number('MaximumMessageSize')} bytes. "
                f"You have sent {total} bytes.",
            )
        successful, failed = [], []
        for entry in entries:
            try:
                successful.append({"Id": entry["Id"], **self._send_one(queue, entry)})
            except SqsError as error:
                failed.append(batch_failure(entry["Id"], error))
        return {"Successful": successful, "Failed": failed}

    def _send_one(self, queue: Queue, params: dict) -> dict:
        body = params.get("MessageBody")
        if not body:
            raise missing("MessageBody")
        if FORBIDDEN_BODY_CHARACTER.search(body):
            raise SqsError("InvalidMessageContents", "Invalid characters found.")
        attributes = params.get("MessageAttributes") or {}
        size = len(body.encode()) + self._attributes_size(attributes)
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

        now = self.now_ms()
        body_md5 = md5_hex(body.encode())
        attributes_md5 = message_attributes_md5(attributes) if attributes else None
        reply = {"MD5OfMessageBody": body_md5}
        if attributes_md5:
            reply["MD5OfMessageAttributes"] = attributes_md5
        dedup_scope = group_id if queue.attributes.get("DeduplicationScope") == "messageGroup" else ""
        if queue.fifo:
            duplicate = self._db.execute(
                "SELECT message_id, sequence_number FROM deduplication"
                " WHERE queue_id = ? AND scope = ? AND dedup_id = ? AND expires_at > ?",
                (queue.id, dedup_scope, dedup_id, now),
            ).fetchone()
            if duplicate:  # accepted, but not enqueued a second time
                return {**reply, "MessageId": duplicate[0], "SequenceNumber": duplicate[1]}
        message_id = str(uuid.uuid4())
        row_id = self._insert_message(
            queue,
            message_id=message_id,
            body=body,
            body_md5=body_md5,
            message_attributes=json.dumps(attributes) if attributes else None,
            message_attributes_md5=attributes_md5,
            group_id=group_id,
            dedup_id=dedup_id if queue.fifo else None,
            sent_at=now,
            visible_at=now + delay * 1000,
        )
        reply["MessageId"] = message_id
        if queue.fifo:
            reply["SequenceNumber"] = f"{row_id:020d}"
            self._db.execute(
                "INSERT OR REPLACE INTO deduplication VALUES (?, ?, ?, ?, ?, ?)",
                (
                    queue.id,
                    dedup_scope,
                    dedup_id,
                    message_id,
                    reply["SequenceNumber"],
                    now + DEDUP_INTERVAL_MS,
                ),
            )
        return reply

    @staticmethod
    def _attributes_size(attributes: dict) -> int:
        size = 0
        for name, value in attributes.items():
            if not isinstance(value, dict) or "DataType" not in value:
                raise invalid(f"The message attribute '{name}' must contain a non-empty attribute type.")
            if "StringValue" not in value and "BinaryValue" not in value:
                raise invalid(
                    f"The message attribute '{name}' must contain a non-empty message attribute value."
                )
            content = value.get("StringValue", "").encode() or base64.b64decode(value.get("BinaryValue", ""))
            size += len(name.encode()) + len(value["DataType"].encode()) + len(content)
        return size

    def _insert_message(self, queue: Queue, **columns) -> int:
        columns["expires_at"] = columns["sent_at"] + queue.number("MessageRetentionPeriod") * 1000
        names = ", ".join(columns)
        cursor = self._db.execute(
            f"INSERT INTO messages (queue_id, {names}) VALUES (?{', ?' * len(columns)})",
            (queue.id, *columns.values()),
        )
        if queue.fifo:
            # A new group is ready when its only message is; an existing group keeps its head.
            self._db.execute(
                "INSERT OR IGNORE INTO message_groups VALUES (?, ?, ?)",
                (queue.id, columns["group_id"], columns["visible_at"]),
            )
        return cursor.lastrowid

    def _refresh_group(self, queue_id: int, group_id: str) -> None:
        """Recompute when a FIFO group can next deliver: once its head is visible and nothing
        of it is in flight (received messages block the group until deleted or visible again)."""
        head = self._db.execute(
            "SELECT visible_at FROM messages WHERE queue_id = ? AND group_id = ? ORDER BY id LIMIT 1",
            (queue_id, group_id),
        ).fetchone()
        if head is None:
            self._db.execute(
                "DELETE FROM message_groups WHERE queue_id = ? AND group_id = ?", (queue_id, group_id)
            )
            return
        (in_flight_until,) = self._db.execute(
            "SELECT MAX(visible_at) FROM messages WHERE queue_id = ? AND group_id = ? AND receive_count > 0",
            (queue_id, group_id),
        ).fetchone()
        self._db.execute(
            "INSERT OR REPLACE INTO message_groups VALUES (?, ?, ?)",
            (queue_id, group_id, max(head[0], in_flight_until or 0)),
        )

    # ---- receiving ------------------------------------------------------------------------

    def _receive_message(self, params: dict) -> dict:
        with self._lock:
            queue = self._queue(params)
            wait = int_parameter(
                params, "WaitTimeSeconds", queue.number("ReceiveMessageWaitTimeSeconds"), 0, 20
            )
            int_parameter(params, "MaxNumberOfMessages", 1, 1, 10)
            int_parameter(params, "VisibilityTimeout", 0, 0, 43200)
            deadline = time.monotonic() + wait
            while True:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    messages = self._receive_available(queue, params)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                remaining = deadline - time.monotonic()
                if messages or remaining <= 0 or self._queues.get(queue.name) is not queue:
                    return {"Messages": messages} if messages else {}
                next_ready = self._next_ready_at(queue)
                if next_ready is not None:
                    remaining = min(remaining, max(0.001, (next_ready - self.now_ms()) / 1000))
                self._changed.wait(remaining)

    def _next_ready_at(self, queue: Queue) -> int | None:
        if queue.fifo:
            sql = "SELECT MIN(ready_at) FROM message_groups WHERE queue_id = ?"
        else:
            sql = "SELECT MIN(visible_at) FROM messages WHERE queue_id = ? AND dedup_id IS NULL"
        return self._db.execute(sql, (queue.id,)).fetchone()[0]

    def _receive_available(self, queue: Queue, params: dict) -> list[dict]:
        limit = params.get("MaxNumberOfMessages", 1)
        visibility = params.get("VisibilityTimeout", queue.number("VisibilityTimeout"))
        now = self.now_ms()
        selected = "id, message_id, body, body_md5, message_attributes, message_attributes_md5, group_id," \
            " dedup_id, sent_at, visible_at, expires_at, receive_count, first_received_at," \
            " dead_letter_source_queue_id"  # fmt: skip
        delivered: list[sqlite3.Row] = []
        if queue.fifo:
            self._take_from_groups(queue, delivered, limit, selected, now, visibility)
        else:
            rows = self._db.execute(
                f"SELECT {selected} FROM messages WHERE queue_id = ? AND visible_at <= ?"
                " AND dedup_id IS NULL ORDER BY visible_at LIMIT ?",
                (queue.id, now, limit * 2),
            ).fetchall()
            delivered = [row for row in rows if self._deliverable(queue, row, now)][:limit]
        if not delivered:
            return []
        # One token per receive call: the row id in each handle keeps the handles distinct.
        token = secrets.token_urlsafe(12)
        self._db.execute(
            "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1,"
            " first_received_at = COALESCE(first_received_at, ?), receipt_token = ?"
            f" WHERE id IN ({marks(len(delivered))})",
            (now + visibility * 1000, now, token, *(row["id"] for row in delivered)),
        )
        return [self._message_reply(queue, row, now, token, params) for row in delivered]

    def _take_from_groups(
        self, queue: Queue, delivered: list, limit: int, selected: str, now: int, visibility: int
    ) -> None:
        """FIFO: as many messages of one ready group as possible, in order, then the next group."""
        visited: set[str] = set()
        while len(delivered) < limit:
            groups = [
                group_id
                for (group_id,) in self._db.execute(
                    "SELECT group_id FROM message_groups WHERE queue_id = ? AND ready_at <= ?"
                    " ORDER BY ready_at LIMIT ?",
                    (queue.id, now, len(visited) + limit - len(delivered)),
                )
                if group_id not in visited
            ]
            if not groups:
                break
            for group_id in groups:
                visited.add(group_id)
                delivered_before = len(delivered)
                self._take_from_group(queue, group_id, delivered, limit, selected, now)
                if len(delivered) > delivered_before:  # its head is now in flight until then
                    self._db.execute(
                        "UPDATE message_groups SET ready_at = ? WHERE queue_id = ? AND group_id = ?",
                        (now + visibility * 1000, queue.id, group_id),
                    )
                else:
                    self._refresh_group(queue.id, group_id)
                if len(delivered) >= limit:
                    break

    def _take_from_group(
        self, queue: Queue, group_id: str, delivered: list, limit: int, selected: str, now: int
    ) -> None:
        """Take the group's messages in order until the limit or a delayed one; messages moved to
        the dead-letter queue or expired on the way make room for the next."""
        after_id = 0
        while len(delivered) < limit:
            rows = self._db.execute(
                f"SELECT {selected} FROM messages WHERE queue_id = ? AND group_id = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (queue.id, group_id, after_id, limit - len(delivered)),
            ).fetchall()
            for row in rows:
                if row["visible_at"] > now:
                    return
                after_id = row["id"]
                if self._deliverable(queue, row, now):
                    delivered.append(row)
            if not rows:
                return

    def _deliverable(self, queue: Queue, row: sqlite3.Row, now: int) -> bool:
        """False when the message expired or was just moved to the dead-letter queue instead."""
        if row["expires_at"] <= now:
            self._db.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
            return False
        redrive = queue.redrive
        if redrive and row["receive_count"] >= redrive[1]:
            dead_letter_queue = self._queues.get(redrive[0])
            if dead_letter_queue is not None:
                self._move(row, queue, dead_letter_queue, now, source_queue_id=queue.id)
                return False
        return True

    def _move(self, row: sqlite3.Row, source: Queue, destination: Queue, now: int, source_queue_id) -> None:
        """Move a message to another queue, keeping its id, body, group and sent time."""
        self._db.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
        self._insert_message(
            destination,
            message_id=row["message_id"],
            body=row["body"],
            body_md5=row["body_md5"],
            message_attributes=row["message_attributes"],
            message_attributes_md5=row["message_attributes_md5"],
            group_id=row["group_id"],
            dedup_id=row["dedup_id"] if destination.fifo else None,
            sent_at=row["sent_at"],
            visible_at=now,
            dead_letter_source_queue_id=source_queue_id,
        )
        if source.fifo:
            self._refresh_group(source.id, row["group_id"])

    def _message_reply(self, queue: Queue, row: sqlite3.Row, now: int, token: str, params: dict) -> dict:
        first_received_at = row["first_received_at"] or now
        message = {
            "MessageId": row["message_id"],
            "ReceiptHandle": f"{row['id']}.{token}",
            "MD5OfBody": row["body_md5"],
            "Body": row["body"],
        }
        wanted = set(params.get("AttributeNames") or []) | set(
            params.get("MessageSystemAttributeNames") or []
        )
        if wanted:
            system = {
                "SenderId": ACCOUNT,
                "SentTimestamp": str(row["sent_at"]),
                "ApproximateReceiveCount": str(row["receive_count"] + 1),
                "ApproximateFirstReceiveTimestamp": str(first_received_at),
            }
            if queue.fifo:
                system.update(
                    MessageGroupId=row["group_id"],
                    MessageDeduplicationId=row["dedup_id"],
                    SequenceNumber=f"{row['id']:020d}",
                )
            source = self._queue_by_id(row["dead_letter_source_queue_id"])
            if source is not None:
                system["DeadLetterQueueSourceArn"] = self.queue_arn(source)
            message["Attributes"] = {k: v for k, v in system.items() if "All" in wanted or k in wanted}
        names = params.get("MessageAttributeNames") or []
        if names and row["message_attributes"]:
            stored = json.loads(row["message_attributes"])
            chosen = {
                name: value
                for name, value in stored.items()
                if any(
                    pattern in {"All", ".*"} or pattern == name
                    or (pattern.endswith(".*") and name.startswith(pattern[:-1]))
                    for pattern in names
                )
            }  # fmt: skip
            if chosen:
                message["MessageAttributes"] = chosen
                message["MD5OfMessageAttributes"] = message_attributes_md5(chosen)
        return message

    def _queue_by_id(self, queue_id: int | None) -> Queue | None:
        if queue_id is None:
            return None
        return next((queue for queue in self._queues.values() if queue.id == queue_id), None)

    # ---- deleting and visibility ----------------------------------------------------------

    def _message_for_handle(self, queue: Queue, handle: str | None) -> tuple[sqlite3.Row | None, bool]:
        """The message a receipt handle names, and whether the handle is its latest one."""
        row_id, token = self._parse_handle(handle)
        row = self._db.execute(
            "SELECT id, group_id, visible_at, receipt_token FROM messages WHERE id = ? AND queue_id = ?",
            (row_id, queue.id),
        ).fetchone()
        return row, row is not None and row["receipt_token"] == token

    @staticmethod
    def _parse_handle(handle: str | None) -> tuple[int, str]:
        """Receipt handles are "<message row id>.<token of that receive>"."""
        if not handle:
            raise missing("ReceiptHandle")
        row_id, _, token = handle.partition(".")
        if not row_id.isdigit() or not token:
            raise SqsError(
                "ReceiptHandleIsInvalid", f'The input receipt handle "{handle}" is not a valid one.'
            )
        return int(row_id), token

    def _delete_message(self, params: dict) -> dict:
        queue = self._queue(params)
        self._delete_by_handles(queue, [self._parse_handle(params.get("ReceiptHandle"))])
        return {}

    def _delete_message_batch(self, params: dict) -> dict:
        queue = self._queue(params)
        entries = params.get("Entries") or []
        check_batch(entries, "DeleteMessageBatchRequestEntry")
        successful, failed, handles = [], [], []
        for entry in entries:
            try:
                handles.append(self._parse_handle(entry.get("ReceiptHandle")))
                successful.append({"Id": entry["Id"]})
            except SqsError as error:
                failed.append(batch_failure(entry["Id"], error))
        self._delete_by_handles(queue, handles)
        return {"Successful": successful, "Failed": failed}

    def _delete_by_handles(self, queue: Queue, handles: list[tuple[int, str]]) -> None:
        """Delete the messages whose latest receipt handles these are. A handle from an earlier
        receive succeeds without deleting, as SQS documents for DeleteMessage."""
        if not handles:
            return
        ids, latest = {row_id for row_id, _ in handles}, set(handles)
        rows = self._db.execute(  # by row id only: a queue_id term could make SQLite walk the queue
            f"SELECT id, receipt_token, group_id, queue_id FROM messages WHERE id IN ({marks(len(ids))})",
            tuple(ids),
        ).fetchall()
        deleted = [row for row in rows if (row[0], row[1]) in latest and row[3] == queue.id]
        if deleted:  # one statement for the whole batch
            self._db.execute(
                f"DELETE FROM messages WHERE id IN ({marks(len(deleted))})", [row[0] for row in deleted]
            )
        if queue.fifo:
            for group_id in {row[2] for row in deleted}:
                self._refresh_group(queue.id, group_id)

    def _change_message_visibility(self, params: dict) -> dict:
        queue = self._queue(params)
        self._change_one(queue, params)
        return {}

    def _change_message_visibility_batch(self, params: dict) -> dict:
        queue = self._queue(params)
        entries = params.get("Entries") or []
        check_batch(entries, "ChangeMessageVisibilityBatchRequestEntry")
        successful, failed = [], []
        for entry in entries:
            try:
                self._change_one(queue, entry)
                successful.append({"Id": entry["Id"]})
            except SqsError as error:
                failed.append(batch_failure(entry["Id"], error))
        return {"Successful": successful, "Failed": failed}

    def _change_one(self, queue: Queue, params: dict) -> None:
        if "VisibilityTimeout" not in params:
            raise missing("VisibilityTimeout")
        timeout = int_parameter(params, "VisibilityTimeout", 0, 0, 43200)
        row, latest = self._message_for_handle(queue, params.get("ReceiptHandle"))
        if not latest:
            raise SqsError(
                "ReceiptHandleIsInvalid", "The receipt handle has expired or is not the latest one."
            )
        now = self.now_ms()
        if row["visible_at"] <= now:
            raise SqsError("MessageNotInflight", "The message referred to isn't in flight.")
        self._db.execute("UPDATE messages SET visible_at = ? WHERE id = ?", (now + timeout * 1000, row["id"]))
        if queue.fifo:
            self._refresh_group(queue.id, row["group_id"])

    # ---- dead-letter redrive --------------------------------------------------------------

    def _move_task_source(self, params: dict) -> tuple[str, Queue]:
        source_arn = params.get("SourceArn")
        if not source_arn:
            raise missing("SourceArn")
        source = self._queues.get(queue_name_from_arn(source_arn))
        if source is None:
            raise SqsError("ResourceNotFoundException", f"The queue {source_arn} does not exist.")
        return source_arn, source

    def _start_message_move_task(self, params: dict) -> dict:
        source_arn, source = self._move_task_source(params)
        if not any(queue.redrive and queue.redrive[0] == source.name for queue in self._queues.values()):
            raise invalid("Source queue must be configured as a Dead Letter Queue.")
        destination_arn = params.get("DestinationArn")
        if destination_arn and queue_name_from_arn(destination_arn) not in self._queues:
            raise SqsError("ResourceNotFoundException", f"The queue {destination_arn} does not exist.")
        rate = params.get("MaxNumberOfMessagesPerSecond")
        if rate is not None:
            int_parameter(params, "MaxNumberOfMessagesPerSecond", 1, 1, 500)
        running = self._db.execute(
            "SELECT 1 FROM move_tasks WHERE source_queue_id = ? AND status = 'RUNNING'", (source.id,)
        ).fetchone()
        if running:
            raise invalid(
                "There is already a task running. Only one active task is allowed per source queue."
            )
        now = self.now_ms()
        (to_move,) = self._db.execute(
            "SELECT COUNT(*) FROM messages WHERE queue_id = ?", (source.id,)
        ).fetchone()
        handle = base64.urlsafe_b64encode(
            json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode()
        ).decode()
        self._db.execute(
            "INSERT INTO move_tasks (handle, source_queue_id, source_arn, destination_arn, rate, status,"
            " to_move, started_at) VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, ?)",
            (handle, source.id, source_arn, destination_arn, rate, to_move, now),
        )
        self._advance_move_task(handle, now)
        return {"TaskHandle": handle}

    def _list_message_move_tasks(self, params: dict) -> dict:
        _, source = self._move_task_source(params)
        limit = int_parameter(params, "MaxResults", 1, 1, 10)
        results = []
        for task in self._db.execute(
            "SELECT * FROM move_tasks WHERE source_queue_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (source.id, limit),
        ):
            result = {
                "Status": task["status"],
                "SourceArn": task["source_arn"],
                "ApproximateNumberOfMessagesMoved": task["moved"],
                "ApproximateNumberOfMessagesToMove": task["to_move"],
                "StartedTimestamp": task["started_at"],
            }
            if task["status"] == "RUNNING":
                result["TaskHandle"] = task["handle"]
            if task["destination_arn"]:
                result["DestinationArn"] = task["destination_arn"]
            if task["rate"]:
                result["MaxNumberOfMessagesPerSecond"] = task["rate"]
            if task["failure_reason"]:
                result["FailureReason"] = task["failure_reason"]
            results.append(result)
        return {"Results": results}

    def _cancel_message_move_task(self, params: dict) -> dict:
        handle = params.get("TaskHandle")
        if not handle:
            raise missing("TaskHandle")
        task = self._db.execute(
            "SELECT moved FROM move_tasks WHERE handle = ? AND status = 'RUNNING'", (handle,)
        ).fetchone()
        if task is None:
            raise SqsError("ResourceNotFoundException", "Task does not exist or is not running.")
        self._db.execute("UPDATE move_tasks SET status = 'CANCELLED' WHERE handle = ?", (handle,))
        return {"ApproximateNumberOfMessagesMoved": task["moved"]}

    def _advance_move_task(self, handle: str, now: int) -> None:
        task = self._db.execute("SELECT * FROM move_tasks WHERE handle = ?", (handle,)).fetchone()
        source = self._queue_by_id(task["source_queue_id"])
        allowed = task["to_move"] - task["moved"]
        if task["rate"]:
            allowed = min(allowed, (now - task["started_at"]) * task["rate"] // 1000 + 1 - task["moved"])
        moved, failure = 0, None
        if source is not None and allowed > 0:
            # FIFO: group by group, each in order; standard: through the visibility index.
            order = "ORDER BY group_id, id" if source.fifo else "AND dedup_id IS NULL ORDER BY visible_at, id"
            rows = self._db.execute(
                f"SELECT * FROM messages WHERE queue_id = ? AND visible_at <= ? {order} LIMIT ?",
                (source.id, now, min(allowed, MAX_MOVE_CHUNK)),
            ).fetchall()
            for row in rows:
                if task["destination_arn"]:
                    destination = self._queues.get(queue_name_from_arn(task["destination_arn"]))
                else:
                    destination = self._queue_by_id(row["dead_letter_source_queue_id"])
                if destination is None:
                    failure = "Message has no source queue to return to; give a DestinationArn."
                    break
                if destination.fifo and not row["group_id"]:
                    failure = "A message without MessageGroupId cannot move to a FIFO queue."
                    break
                self._move(row, source, destination, now, source_queue_id=None)
                moved += 1
        total = task["moved"] + moved
        status = "FAILED" if failure else "RUNNING"
        if not failure and (source is None or total >= task["to_move"] or (allowed > 0 and moved == 0)):
            status = "COMPLETED"
        self._db.execute(
            "UPDATE move_tasks SET moved = ?, status = ?, failure_reason = ? WHERE handle = ?",
            (total, status, failure, handle),
        )

    # ---- housekeeping ---------------------------------------------------------------------

    def run_due_work(self) -> None:
        """Advance message move tasks and drop expired messages and deduplication entries.
        The server calls this several times a second; tests with a fake clock call it directly."""
        with self._lock:
            now = self.now_ms()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                tasks = [
                    row[0]
                    for row in self._db.execute("SELECT handle FROM move_tasks WHERE status = 'RUNNING'")
                ]
                for handle in tasks:
                    self._advance_move_task(handle, now)
                expired = self._db.execute(
                    "SELECT id, queue_id, group_id FROM messages WHERE expires_at <= ? LIMIT 1000", (now,)
                ).fetchall()
                for row in expired:
                    self._db.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
                for queue_id, group_id in {(row["queue_id"], row["group_id"]) for row in expired}:
                    if group_id is not None:
                        self._refresh_group(queue_id, group_id)
                if now - self._last_dedup_prune > 10_000:
                    self._db.execute("DELETE FROM deduplication WHERE expires_at <= ?", (now,))
                    self._last_dedup_prune = now
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            if tasks:
                self._changed.notify_all()
