"""The queue store, the emulator's front door: every SQS action by name, one transaction each.

Requests and replies are the JSON documents of the SQS JSON protocol, so the HTTP layer only
routes. Time comes from an injectable clock (seconds), so tests can make time pass instantly.
The actions live with what they work on: queues.py, messages.py (send, delete, visibility),
receiving.py, move_tasks.py; storage.py holds the SQLite database and all its statements (FIFO
group scheduling and deduplication among them), validation.py and batch.py the request checks.

Cost per call is O(log n) in the queue's depth: standard queues receive through an index of
their messages by visibility, FIFO queues through an index of their ready message groups.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from local.sqs.errors import SqsError
from local.sqs.messages import MessageActions
from local.sqs.move_tasks import MoveTasks
from local.sqs.queues import QueueActions, QueueAddresses
from local.sqs.receiving import Receiver
from local.sqs.shapes import operation_shapes
from local.sqs.storage import Storage

Action = Callable[[dict[str, Any]], dict[str, Any]]

# Actions after which a long-polling receive may find messages.
WAKES_RECEIVERS = {
    "SendMessage",
    "SendMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "StartMessageMoveTask",
}


class QueueStore:
    """All queues of one emulator, in one SQLite database. Thread-safe: calls are serialised,
    and ReceiveMessage long polls wait on a condition that sends and visibility changes signal."""

    def __init__(
        self,
        database: str,
        base_url: str = "http://127.0.0.1:9324",
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._storage = Storage(database, clock)
        addresses = QueueAddresses(self._storage, self.base_url, region)
        queues = QueueActions(self._storage, addresses)
        messages = MessageActions(self._storage, addresses)
        move_tasks = MoveTasks(self._storage)
        self._receiver = Receiver(self._storage, addresses)
        self._move_tasks = move_tasks
        # Every action but ReceiveMessage, which `handle` runs itself (it waits without the lock).
        self._actions: dict[str, Action] = {
            "CreateQueue": queues.create_queue,
            "GetQueueUrl": queues.get_queue_url,
            "ListQueues": queues.list_queues,
            "GetQueueAttributes": queues.get_queue_attributes,
            "SetQueueAttributes": queues.set_queue_attributes,
            "DeleteQueue": queues.delete_queue,
            "PurgeQueue": queues.purge_queue,
            "ListDeadLetterSourceQueues": queues.list_dead_letter_source_queues,
            "SendMessage": messages.send_message,
            "SendMessageBatch": messages.send_message_batch,
            "DeleteMessage": messages.delete_message,
            "DeleteMessageBatch": messages.delete_message_batch,
            "ChangeMessageVisibility": messages.change_message_visibility,
            "ChangeMessageVisibilityBatch": messages.change_message_visibility_batch,
            "StartMessageMoveTask": move_tasks.start_message_move_task,
            "ListMessageMoveTasks": move_tasks.list_message_move_tasks,
            "CancelMessageMoveTask": move_tasks.cancel_message_move_task,
        }
        self._request_shapes = operation_shapes()

    def close(self) -> None:
        with self._lock:
            self._storage.close()

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database, without the store's lock (see Storage)."""
        self._storage.checkpoint()

    def now_ms(self) -> int:
        return self._storage.now_ms()

    def handle(self, action: str, params: Any) -> dict[str, Any]:
        """Run one SQS action on its request (the decoded JSON document); raises SqsError for an
        error reply. The request is checked against the action's shape first."""
        check_request = self._request_shapes.get(action)
        if check_request is None:
            raise SqsError("InvalidAction", f"The action {action} is not valid for this endpoint.")
        params = check_request(params)
        if action == "ReceiveMessage":
            return self._receive_message(params)
        run_action = self._actions.get(action)
        if run_action is None:  # an SQS action the emulator does not serve: tags, permissions
            raise SqsError("UnsupportedOperation", f"The local SQS emulator does not support {action}.")
        with self._lock:
            with self._storage.transaction:
                reply = run_action(params)
            if action in WAKES_RECEIVERS:
                self._changed.notify_all()
            return reply

    def _receive_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """Receive at once, or wait (long poll) until a message can go out or the wait ends;
        the wait releases the lock, so sends go on meanwhile."""
        with self._lock:
            queue, wait_s = self._receiver.validated_request(params)
            deadline = time.monotonic() + wait_s
            while True:
                with self._storage.transaction:
                    messages = self._receiver.receive_available(queue, params)
                remaining = deadline - time.monotonic()
                if messages or remaining <= 0 or self._storage.queues.get(queue.name) is not queue:
                    return {"Messages": messages} if messages else {}
                next_ready = self._storage.next_delivery_at(queue)
                if next_ready is not None:
                    remaining = min(remaining, max(0.001, (next_ready - self.now_ms()) / 1000))
                self._changed.wait(remaining)

    def run_due_work(self) -> None:
        """Advance message move tasks and drop expired messages and deduplication entries.
        The server calls this several times a second; tests with a fake clock call it directly."""
        with self._lock:
            now = self.now_ms()
            with self._storage.transaction:
                tasks_ran = self._move_tasks.advance_running(now)
                self._storage.delete_expired(now)
                self._storage.deduplication.prune(now)
            if tasks_ran:
                self._changed.notify_all()
