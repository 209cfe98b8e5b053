"""Storage: the SQLite database of all queues, the catalogue of queues kept in memory, and the
message rows every action reads and writes.

Standard queues receive through the index (queue_id, visible_at), which holds their messages
only (those without a deduplication id): a FIFO receive would otherwise move ten of its entries
for nothing. FIFO queues are scheduled through `message_groups` (see local/sqs/fifo.py).
"""

import json
import sqlite3
from collections.abc import Callable
from types import TracebackType
from typing import Any

from local.sqs.fifo import Deduplication, GroupSchedule
from local.sqs.model import Queue

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
EXPIRED_PER_STEP = 1000  # expired messages dropped per housekeeping step


def marks(count: int) -> str:
    """Placeholders for `IN (...)` with `count` values."""
    return ", ".join("?" * count)


class Transaction:
    """`with storage.transaction:` one write transaction, committed when the block ends and
    rolled back if it raises. A class rather than a generator: it runs on every call."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._db.execute("ROLLBACK" if error_type is not None else "COMMIT")


class Storage:
    """One SQLite connection for every call (the store serialises them), the queues it holds,
    and the clock all stored times come from (milliseconds since the epoch)."""

    def __init__(self, database: str, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._database = database
        self._checkpointer: sqlite3.Connection | None = None
        self.db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL writes every commit to the log before returning: a killed process
        # loses nothing it acknowledged (only an operating-system crash could), without an fsync per call.
        self.db.execute("PRAGMA synchronous=NORMAL")
        # A deep backlog's indexes stay in memory: page reads would otherwise dominate each call.
        self.db.execute("PRAGMA cache_size=-131072")
        self.db.execute("PRAGMA mmap_size=1073741824")
        self.db.execute("PRAGMA secure_delete=OFF")  # no need to zero deleted test messages on disk
        # The server checkpoints from its housekeeping thread (`checkpoint`), outside the calls;
        # a call checkpoints itself only if the log grows past this many pages without that.
        self.db.execute("PRAGMA wal_autocheckpoint=20000")
        self.db.executescript(SCHEMA)
        self.transaction = Transaction(self.db)
        self.groups = GroupSchedule(self.db)
        self.deduplication = Deduplication(self.db)
        self.queues: dict[str, Queue] = {
            row["name"]: Queue(
                row["id"], row["name"], json.loads(row["attributes"]), row["created_at"], row["modified_at"]
            )
            for row in self.db.execute("SELECT * FROM queues")
        }

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database on a connection of its own, without
        the store's lock: calls go on meanwhile instead of paying for the copy and its fsync."""
        if self._database == ":memory:":
            return
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self._database, check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        self.db.close()
        if self._checkpointer is not None:
            self._checkpointer.close()

    # ---- queues -------------------------------------------------------------------------------

    def queue_by_id(self, queue_id: int | None) -> Queue | None:
        if queue_id is None:
            return None
        return next((queue for queue in self.queues.values() if queue.id == queue_id), None)

    def add_queue(self, name: str, attributes: dict[str, str]) -> Queue:
        now = self.now_ms()
        cursor = self.db.execute(
            "INSERT INTO queues (name, attributes, created_at, modified_at) VALUES (?, ?, ?, ?)",
            (name, json.dumps(attributes), now, now),
        )
        assert cursor.lastrowid is not None  # an INSERT always sets it
        queue = Queue(cursor.lastrowid, name, attributes, now, now)
        self.queues[name] = queue
        return queue

    def update_attributes(self, queue: Queue, changed: dict[str, str]) -> None:
        """Apply changed attributes (an empty value unsets one); a new retention period applies
        to the messages already queued."""
        queue.attributes.update(changed)
        queue.attributes = {name: value for name, value in queue.attributes.items() if value != ""}
        queue.modified_at = self.now_ms()
        self.db.execute(
            "UPDATE queues SET attributes = ?, modified_at = ? WHERE id = ?",
            (json.dumps(queue.attributes), queue.modified_at, queue.id),
        )
        if "MessageRetentionPeriod" in changed:
            self.db.execute(
                "UPDATE messages SET expires_at = sent_at + ? WHERE queue_id = ?",
                (int(changed["MessageRetentionPeriod"]) * 1000, queue.id),
            )

    def remove_queue(self, queue: Queue) -> None:
        for table in ("messages", "message_groups", "deduplication"):
            self.db.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue.id,))
        self.db.execute("DELETE FROM queues WHERE id = ?", (queue.id,))
        del self.queues[queue.name]

    def remove_messages(self, queue: Queue) -> None:
        """Purge: the messages go, the deduplication ids stay."""
        for table in ("messages", "message_groups"):
            self.db.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue.id,))

    def message_counts(self, queue: Queue, now: int) -> tuple[int, int, int]:
        """(visible, in flight, delayed). Counting walks the index range: fine for an occasional
        status call, never on the hot path."""
        visible, in_flight, delayed = self.db.execute(
            "SELECT SUM(visible_at <= ?1), SUM(visible_at > ?1 AND receive_count > 0),"
            " SUM(visible_at > ?1 AND receive_count = 0) FROM messages WHERE queue_id = ?2",
            (now, queue.id),
        ).fetchone()
        return visible or 0, in_flight or 0, delayed or 0

    # ---- messages -----------------------------------------------------------------------------

    def insert_message(self, queue: Queue, **columns: Any) -> int:
        """Store a message (columns of `messages` besides queue_id and expires_at); its row id."""
        columns["expires_at"] = columns["sent_at"] + queue.number("MessageRetentionPeriod") * 1000
        names = ", ".join(columns)
        cursor = self.db.execute(
            f"INSERT INTO messages (queue_id, {names}) VALUES (?{', ?' * len(columns)})",
            (queue.id, *columns.values()),
        )
        if queue.fifo:
            self.groups.message_added(queue.id, columns["group_id"], columns["visible_at"])
        assert cursor.lastrowid is not None  # an INSERT always sets it
        return cursor.lastrowid

    def move_message(
        self, row: sqlite3.Row, source: Queue, destination: Queue, now: int, source_queue_id: int | None
    ) -> None:
        """Move a message to another queue, keeping its id, body, group and sent time;
        `source_queue_id` is the queue a dead-letter message came from (None when it goes back)."""
        self.db.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
        self.insert_message(
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
            self.groups.refresh(source.id, row["group_id"])

    def delete_message(self, row_id: int) -> None:
        self.db.execute("DELETE FROM messages WHERE id = ?", (row_id,))

    def delete_expired(self, now: int) -> None:
        """Drop messages past their retention period, a bounded number per call."""
        expired = self.db.execute(
            "SELECT id, queue_id, group_id FROM messages WHERE expires_at <= ? LIMIT ?",
            (now, EXPIRED_PER_STEP),
        ).fetchall()
        for row in expired:
            self.delete_message(row["id"])
        for queue_id, group_id in {(row["queue_id"], row["group_id"]) for row in expired}:
            if group_id is not None:
                self.groups.refresh(queue_id, group_id)
