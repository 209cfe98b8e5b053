"""The batch actions' shared rules: SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch.

A batch is refused as a whole when it is empty, too long, or its entry ids are malformed or
repeated; otherwise each entry succeeds or fails on its own, and the reply lists both.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

from local.sqs.errors import SqsError

MAX_BATCH_ENTRIES = 10
BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")


def batch_entries(params: Mapping[str, Any], entry_name: str) -> list[dict[str, Any]]:
    """The request's entries, once the batch as a whole is valid; `entry_name` is the entry
    shape SQS names in its error message."""
    entries: list[dict[str, Any]] = params.get("Entries") or []
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
    return entries


def batch_reply(
    entries: list[dict[str, Any]], apply_entry: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Apply each entry in order: what `apply_entry` returns joins the entry's success, the
    SqsError it raises becomes the entry's failure."""
    successful, failed = [], []
    for entry in entries:
        try:
            successful.append({"Id": entry["Id"], **apply_entry(entry)})
        except SqsError as error:
            failed.append(
                {"Id": entry["Id"], "SenderFault": True, "Code": error.legacy_code, "Message": error.message}
            )
    return {"Successful": successful, "Failed": failed}
