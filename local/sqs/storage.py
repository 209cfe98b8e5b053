"""Storage: the SQLite database of all queues, the catalogue of queues kept in memory, and every
statement the actions run on it (no other module of the emulator holds SQL).

Standard queues receive through the index (queue_id, visible_at), which holds their messages
only (those without a deduplication id): a FIFO receive would otherwise move ten of its entries
for nothing. A FIFO queue keeps one `message_groups` row per non-empty group with the time it can
next deliver (`ready_at`: its head is visible and none of its messages is in flight), so a receive
reads the first ready groups from an index instead of scanning messages or groups.
"""

import json
import sqlite3
from collections.abc import Callable
from types import TracebackType
from typing import Any

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
DEDUP_INTERVAL_MS = 5 * 60 * 1000
DEDUP_PRUNE_INTERVAL_MS = 10_000
RECEIVED_COLUMNS = (  # what a receive reads of each message
    "id, message_id, body, body_md5, message_attributes, message_attributes_md5, group_id, dedup_id, sent_at,"
    " visible_at, expires_at, receive_count, first_received_at, dead_letter_source_queue_id"
)


def marks(count: int) -> str:
    """Placeholders for `IN (...)` with `count` values."""
    return ", ".join("?" * count)


class GroupSchedule:
    """When each message group of a FIFO queue can deliver next, and which messages it delivers."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def message_added(self, queue_id: int, group_id: str | None, visible_at: int) -> None:
        """A new group is ready when its only message is; an existing group keeps its head."""
        self._db.execute(
            "INSERT OR IGNORE INTO message_groups VALUES (?, ?, ?)", (queue_id, group_id, visible_at)
        )

    def refresh(self, queue_id: int, group_id: str) -> None:
        """Recompute when a group can next deliver: once its head is visible and nothing of it
        is in flight (received messages block the group until deleted or visible again)."""
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

    def next_ready_at(self, queue_id: int) -> int | None:
        return self._db.execute(
            "SELECT MIN(ready_at) FROM message_groups WHERE queue_id = ?", (queue_id,)
        ).fetchone()[0]

    def take(
        self,
        queue_id: int,
        limit: int,
        now: int,
        visibility_s: int,
        deliverable: Callable[[sqlite3.Row], bool],
    ) -> list[sqlite3.Row]:
        """As many messages of one ready group as possible, in order, then the next group; each
        group that delivered is held until the messages' visibility ends. `deliverable` says
        whether a message goes out (False when it expired or moved to the dead-letter queue)."""
        delivered: list[sqlite3.Row] = []
        visited: set[str] = set()
        while len(delivered) < limit:
            groups = [
                group_id
                for (group_id,) in self._db.execute(
                    "SELECT group_id FROM message_groups WHERE queue_id = ? AND ready_at <= ?"
                    " ORDER BY ready_at LIMIT ?",
                    (queue_id, now, len(visited) + limit - len(delivered)),
                )
                if group_id not in visited
            ]
            if not groups:
                break
            for group_id in groups:
                visited.add(group_id)
                delivered_before = len(delivered)
                self._take_from_group(queue_id, group_id, delivered, limit, now, deliverable)
                if len(delivered) > delivered_before:  # its head is now in flight until then
                    self._db.execute(
                        "UPDATE message_groups SET ready_at = ? WHERE queue_id = ? AND group_id = ?",
                        (now + visibility_s * 1000, queue_id, group_id),
                    )
                else:
                    self.refresh(queue_id, group_id)
                if len(delivered) >= limit:
                    break
        return delivered

    def _take_from_group(
        self,
        queue_id: int,
        group_id: str,
        delivered: list[sqlite3.Row],
        limit: int,
        now: int,
        deliverable: Callable[[sqlite3.Row], bool],
    ) -> None:
        """Take the group's messages in order until the limit or a delayed one; messages moved to
        the dead-letter queue or expired on the way make room for the next."""
        after_id = 0
        while len(delivered) < limit:
            rows = self._db.execute(
                f"SELECT {RECEIVED_COLUMNS} FROM messages WHERE queue_id = ? AND group_id = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (queue_id, group_id, after_id, limit - len(delivered)),
            ).fetchall()
            for row in rows:
                if row["visible_at"] > now:
                    return
                after_id = row["id"]
                if deliverable(row):
                    delivered.append(row)
            if not rows:
                return


class Deduplication:
    """Deduplication ids of FIFO queues, remembered for five minutes per queue or per group."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._last_prune = 0

    def earlier_send(self, queue_id: int, scope: str, dedup_id: str, now: int) -> sqlite3.Row | None:
        """(message id, sequence number) of the send this one duplicates, if any."""
        return self._db.execute(
            "SELECT message_id, sequence_number FROM deduplication"
            " WHERE queue_id = ? AND scope = ? AND dedup_id = ? AND expires_at > ?",
            (queue_id, scope, dedup_id, now),
        ).fetchone()

    def remember(
        self, queue_id: int, scope: str, dedup_id: str, message_id: str, sequence_number: str, now: int
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO deduplication VALUES (?, ?, ?, ?, ?, ?)",
            (queue_id, scope, dedup_id, message_id, sequence_number, now + DEDUP_INTERVAL_MS),
        )

    def prune(self, now: int) -> None:
        """Drop expired ids, at most every ten seconds: lookups ignore them meanwhile."""
        if now - self._last_prune > DEDUP_PRUNE_INTERVAL_MS:
            self._db.execute("DELETE FROM deduplication WHERE expires_at <= ?", (now,))
            self._last_prune = now


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

    def delete_messages(self, queue: Queue, rows: list[sqlite3.Row]) -> None:
        """Delete these messages of the queue (rows with their id and group_id)."""
        if rows:
            self.db.execute(
                f"DELETE FROM messages WHERE id IN ({marks(len(rows))})", [row["id"] for row in rows]
            )
        if queue.fifo:
            for group_id in {row["group_id"] for row in rows}:
                self.groups.refresh(queue.id, group_id)

    def receipts(self, row_ids: set[int]) -> list[sqlite3.Row]:
        """The messages with these row ids, with the queue, group, visibility and receipt token of
        each. By row id only: a queue_id term could make SQLite walk the queue."""
        return self.db.execute(
            "SELECT id, receipt_token, group_id, queue_id, visible_at FROM messages"
            f" WHERE id IN ({marks(len(row_ids))})",
            tuple(row_ids),
        ).fetchall()

    def change_visibility(self, queue: Queue, row: sqlite3.Row, visible_at: int) -> None:
        self.db.execute("UPDATE messages SET visible_at = ? WHERE id = ?", (visible_at, row["id"]))
        if queue.fifo:
            self.groups.refresh(queue.id, row["group_id"])

    # ---- receiving ----------------------------------------------------------------------------

    def next_delivery_at(self, queue: Queue) -> int | None:
        """When the queue can next deliver a message (None when it is empty)."""
        if queue.fifo:
            return self.groups.next_ready_at(queue.id)
        return self.db.execute(
            "SELECT MIN(visible_at) FROM messages WHERE queue_id = ? AND dedup_id IS NULL", (queue.id,)
        ).fetchone()[0]

    def visible_standard_messages(self, queue: Queue, now: int, limit: int) -> list[sqlite3.Row]:
        """Up to `limit` visible messages of a standard queue, those visible longest first."""
        return self.db.execute(
            f"SELECT {RECEIVED_COLUMNS} FROM messages WHERE queue_id = ? AND visible_at <= ?"
            " AND dedup_id IS NULL ORDER BY visible_at LIMIT ?",
            (queue.id, now, limit),
        ).fetchall()

    def mark_received(self, rows: list[sqlite3.Row], now: int, visible_at: int, token: str) -> None:
        """Count a receive of these messages, hidden until `visible_at`, with this receipt token."""
        self.db.execute(
            "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1,"
            " first_received_at = COALESCE(first_received_at, ?), receipt_token = ?"
            f" WHERE id IN ({marks(len(rows))})",
            (visible_at, now, token, *(row["id"] for row in rows)),
        )

    # ---- message move tasks -------------------------------------------------------------------

    def messages_to_move(self, source: Queue, now: int, limit: int) -> list[sqlite3.Row]:
        """Up to `limit` visible messages in the order a move takes them: FIFO group by group, each
        in order; standard through the visibility index."""
        order = "ORDER BY group_id, id" if source.fifo else "AND dedup_id IS NULL ORDER BY visible_at, id"
        return self.db.execute(
            f"SELECT * FROM messages WHERE queue_id = ? AND visible_at <= ? {order} LIMIT ?",
            (source.id, now, limit),
        ).fetchall()

    def has_running_move_task(self, source: Queue) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM move_tasks WHERE source_queue_id = ? AND status = 'RUNNING'", (source.id,)
            ).fetchone()
            is not None
        )

    def add_move_task(
        self,
        handle: str,
        source: Queue,
        source_arn: str,
        destination_arn: str | None,
        rate: int | None,
        now: int,
    ) -> None:
        """A running task that is to move the messages the source queue holds now."""
        (to_move,) = self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE queue_id = ?", (source.id,)
        ).fetchone()
        self.db.execute(
            "INSERT INTO move_tasks (handle, source_queue_id, source_arn, destination_arn, rate, status,"
            " to_move, started_at) VALUES (?, ?, ?, ?, ?, 'RUNNING', ?, ?)",
            (handle, source.id, source_arn, destination_arn, rate, to_move, now),
        )

    def latest_move_tasks(self, source: Queue, limit: int) -> list[sqlite3.Row]:
        """The source queue's last `limit` tasks, newest first."""
        return self.db.execute(
            "SELECT * FROM move_tasks WHERE source_queue_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (source.id, limit),
        ).fetchall()

    def move_task(self, handle: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM move_tasks WHERE handle = ?", (handle,)).fetchone()

    def running_move_task_handles(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT handle FROM move_tasks WHERE status = 'RUNNING'")]

    def update_move_task(self, handle: str, moved: int, status: str, failure_reason: str | None) -> None:
        self.db.execute(
            "UPDATE move_tasks SET moved = ?, status = ?, failure_reason = ? WHERE handle = ?",
            (moved, status, failure_reason, handle),
        )
