"""ReceiveMessage: which messages go out (FIFO groups in order, or by visibility), the dead-letter
redrive on the way, and the message replies with their attributes."""

import json
import secrets
import sqlite3
from typing import Any

from local.sqs.messages import message_attributes_md5
from local.sqs.model import ACCOUNT, Queue
from local.sqs.queues import QueueAddresses
from local.sqs.storage import Storage
from local.sqs.validation import MAX_VISIBILITY_TIMEOUT_S, int_parameter

MAX_WAIT_S = 20
MAX_MESSAGES = 10


class Receiver:
    def __init__(self, storage: Storage, addresses: QueueAddresses) -> None:
        self._storage = storage
        self._addresses = addresses

    def validated_request(self, params: dict[str, Any]) -> tuple[Queue, int]:
        """The queue a ReceiveMessage names and how long it may wait (seconds), once its
        parameters are valid."""
        queue = self._addresses.queue(params)
        wait_s = int_parameter(
            params, "WaitTimeSeconds", queue.number("ReceiveMessageWaitTimeSeconds"), 0, MAX_WAIT_S
        )
        int_parameter(params, "MaxNumberOfMessages", 1, 1, MAX_MESSAGES)
        int_parameter(params, "VisibilityTimeout", 0, 0, MAX_VISIBILITY_TIMEOUT_S)
        return queue, wait_s

    def receive_available(self, queue: Queue, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Receive what can be delivered now, without waiting."""
        limit = params.get("MaxNumberOfMessages", 1)
        visibility_s = params.get("VisibilityTimeout", queue.number("VisibilityTimeout"))
        now = self._storage.now_ms()

        def deliverable(row: sqlite3.Row) -> bool:
            return self._deliverable(queue, row, now)

        if queue.fifo:
            delivered = self._storage.groups.take(queue.id, limit, now, visibility_s, deliverable)
        else:
            rows = self._storage.visible_standard_messages(queue, now, limit * 2)
            delivered = [row for row in rows if deliverable(row)][:limit]
        if not delivered:
            return []
        # One token per receive call: the row id in each handle keeps the handles distinct.
        token = secrets.token_urlsafe(12)
        self._storage.mark_received(delivered, now, now + visibility_s * 1000, token)
        return [self._message_reply(queue, row, now, token, params) for row in delivered]

    def _deliverable(self, queue: Queue, row: sqlite3.Row, now: int) -> bool:
        """False when the message expired or was just moved to the dead-letter queue instead."""
        if row["expires_at"] <= now:
            self._storage.delete_message(row["id"])
            return False
        redrive = queue.redrive
        if redrive and row["receive_count"] >= redrive[1]:
            dead_letter_queue = self._storage.queues.get(redrive[0])
            if dead_letter_queue is not None:
                self._storage.move_message(row, queue, dead_letter_queue, now, source_queue_id=queue.id)
                return False
        return True

    def _message_reply(
        self, queue: Queue, row: sqlite3.Row, now: int, token: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
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
                "ApproximateFirstReceiveTimestamp": str(row["first_received_at"] or now),
            }
            if queue.fifo:
                system.update(
                    MessageGroupId=row["group_id"],
                    MessageDeduplicationId=row["dedup_id"],
                    SequenceNumber=f"{row['id']:020d}",
                )
            source = self._storage.queue_by_id(row["dead_letter_source_queue_id"])
            if source is not None:
                system["DeadLetterQueueSourceArn"] = self._addresses.arn(source)
            message["Attributes"] = {k: v for k, v in system.items() if "All" in wanted or k in wanted}
        names = params.get("MessageAttributeNames") or []
        if names and row["message_attributes"]:
            stored = json.loads(row["message_attributes"])
            # "bar.*" returns the attributes whose names start with "bar"; ".*" (prefix "") all.
            prefixes = tuple(pattern[:-2] for pattern in names if pattern.endswith(".*"))
            chosen = {
                name: value
                for name, value in stored.items()
                if "All" in names or name in names or name.startswith(prefixes)
            }
            if chosen:
                message["MessageAttributes"] = chosen
                message["MD5OfMessageAttributes"] = message_attributes_md5(chosen)
        return message
