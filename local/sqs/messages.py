"""Message actions that write: SendMessage, DeleteMessage, ChangeMessageVisibility and their batches."""

import base64
import hashlib
import json
import struct
import uuid
from typing import Any

from local.sqs import validation
from local.sqs.batch import batch_entries, batch_reply
from local.sqs.errors import SqsError
from local.sqs.model import Queue
from local.sqs.queues import QueueAddresses
from local.sqs.storage import Storage

# SendMessageBatch API reference: "The maximum allowed individual message size and the maximum
# total payload size (the sum of the individual lengths of all of the batched messages) are both
# 1 MiB 1,048,576 bytes." The total does not follow the queue's MaximumMessageSize.
MAX_BATCH_BYTES = 1_048_576


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def message_attributes_md5(attributes: dict[str, Any]) -> str:
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


class MessageActions:
    def __init__(self, storage: Storage, addresses: QueueAddresses) -> None:
        self._storage = storage
        self._addresses = addresses

    # ---- sending ------------------------------------------------------------------------------

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send(self._addresses.queue(params), params)

    def send_message_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        entries = batch_entries(params, "SendMessageBatchRequestEntry")
        # Entries are validated one by one later: a lone surrogate counts its 3 bytes here.
        total = sum(len(entry["MessageBody"].encode(errors="surrogatepass")) for entry in entries)
        if total > MAX_BATCH_BYTES:
            raise SqsError(
                "BatchRequestTooLong",
                f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes.",
            )
        if queue.fifo:
            validation.fifo_batch_entries(queue, entries)
        return batch_reply(entries, lambda entry: self._send(queue, entry))

    def _send(self, queue: Queue, params: dict[str, Any]) -> dict[str, Any]:
        message = validation.outgoing_message(queue, params)
        now = self._storage.now_ms()
        body_md5 = md5_hex(message.body.encode())
        attributes_md5 = message_attributes_md5(message.attributes) if message.attributes else None
        reply = {"MD5OfMessageBody": body_md5}
        if attributes_md5:
            reply["MD5OfMessageAttributes"] = attributes_md5
        deduplication = self._storage.deduplication
        dedup_scope = ""
        if message.dedup_id is not None:  # a FIFO queue
            if queue.attributes.get("DeduplicationScope") == "messageGroup":
                dedup_scope = message.group_id or ""
            duplicate = deduplication.earlier_send(queue.id, dedup_scope, message.dedup_id, now)
            if duplicate:  # accepted, but not enqueued a second time
                return {**reply, "MessageId": duplicate[0], "SequenceNumber": duplicate[1]}
        message_id = str(uuid.uuid4())
        row_id = self._storage.insert_message(
            queue,
            message_id=message_id,
            body=message.body,
            body_md5=body_md5,
            message_attributes=json.dumps(message.attributes) if message.attributes else None,
            message_attributes_md5=attributes_md5,
            group_id=message.group_id,
            dedup_id=message.dedup_id,
            sent_at=now,
            visible_at=now + message.delay_s * 1000,
        )
        reply["MessageId"] = message_id
        if message.dedup_id is not None:
            reply["SequenceNumber"] = f"{row_id:020d}"
            deduplication.remember(
                queue.id, dedup_scope, message.dedup_id, message_id, reply["SequenceNumber"], now
            )
        return reply

    # ---- deleting -----------------------------------------------------------------------------

    def delete_message(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        self._delete_by_handles(queue, [validation.receipt_handle(params.get("ReceiptHandle"))])
        return {}

    def delete_message_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        entries = batch_entries(params, "DeleteMessageBatchRequestEntry")
        handles: list[tuple[int, str]] = []

        def collect_handle(entry: dict[str, Any]) -> dict[str, Any]:
            handles.append(validation.receipt_handle(entry.get("ReceiptHandle")))
            return {}

        reply = batch_reply(entries, collect_handle)
        self._delete_by_handles(queue, handles)  # one statement for the whole batch
        return reply

    def _delete_by_handles(self, queue: Queue, handles: list[tuple[int, str]]) -> None:
        """Delete the messages whose latest receipt handles these are. A handle from an earlier
        receive succeeds without deleting, as SQS documents for DeleteMessage."""
        if not handles:
            return
        latest = set(handles)
        rows = self._storage.receipts({row_id for row_id, _ in handles})
        deleted = [
            row for row in rows if (row["id"], row["receipt_token"]) in latest and row["queue_id"] == queue.id
        ]
        self._storage.delete_messages(queue, deleted)

    # ---- visibility ---------------------------------------------------------------------------

    def change_message_visibility(self, params: dict[str, Any]) -> dict[str, Any]:
        self._change_visibility(self._addresses.queue(params), params)
        return {}

    def change_message_visibility_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        entries = batch_entries(params, "ChangeMessageVisibilityBatchRequestEntry")
        return batch_reply(entries, lambda entry: self._change_visibility(queue, entry))

    def _change_visibility(self, queue: Queue, params: dict[str, Any]) -> dict[str, Any]:
        timeout = validation.visibility_timeout(params)
        row_id, token = validation.receipt_handle(params.get("ReceiptHandle"))
        row = next(iter(self._storage.receipts({row_id})), None)
        if row is None or row["queue_id"] != queue.id or row["receipt_token"] != token:
            raise SqsError(
                "ReceiptHandleIsInvalid", "The receipt handle has expired or is not the latest one."
            )
        now = self._storage.now_ms()
        if row["visible_at"] <= now:
            raise SqsError("MessageNotInflight", "The message referred to isn't in flight.")
        self._storage.change_visibility(queue, row, now + timeout * 1000)
        return {}
