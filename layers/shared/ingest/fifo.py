"""The FIFO rule of a partial batch response: nothing of a message group may pass a record that failed.

A batch from a FIFO queue can mix message groups. When a record fails, the records after it in
its group must fail with it (SQS would otherwise deliver them, out of order, while it waits);
records of other groups go on. Records without a group (a standard queue) block nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


def blocked_by_failures(batch: Iterable[tuple[str, str | None]], failed: Collection[str]) -> dict[str, str]:
    """For the batch's (message id, group) pairs in order: each record that is not in `failed` but
    follows a failed record of its group, mapped to the first failed record of that group."""
    first_failure: dict[str, str] = {}
    blocked: dict[str, str] = {}
    for message_id, group in batch:
        if group is None:
            continue
        if group in first_failure:
            if message_id not in failed:
                blocked[message_id] = first_failure[group]
        elif message_id in failed:
            first_failure[group] = message_id
    return blocked
