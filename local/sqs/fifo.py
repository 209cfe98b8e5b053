"""FIFO queues: message-group scheduling and deduplication.

A FIFO queue keeps one `message_groups` row per non-empty group with the time it can next deliver
(`ready_at`: its head is visible and none of its messages is in flight), so a receive reads the
first ready groups from an index instead of scanning messages or groups.
"""

import sqlite3
from collections.abc import Callable

DEDUP_INTERVAL_MS = 5 * 60 * 1000
DEDUP_PRUNE_INTERVAL_MS = 10_000


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
        columns: str,
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
                self._take_from_group(queue_id, group_id, delivered, limit, columns, now, deliverable)
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
        columns: str,
        now: int,
        deliverable: Callable[[sqlite3.Row], bool],
    ) -> None:
        """Take the group's messages in order until the limit or a delayed one; messages moved to
        the dead-letter queue or expired on the way make room for the next."""
        after_id = 0
        while len(delivered) < limit:
            rows = self._db.execute(
                f"SELECT {columns} FROM messages WHERE queue_id = ? AND group_id = ? AND id > ?"
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
