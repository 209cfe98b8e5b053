"""Message move tasks (dead-letter redrive): StartMessageMoveTask, ListMessageMoveTasks,
CancelMessageMoveTask, and the housekeeping step that moves the messages."""

import base64
import json
import uuid
from typing import Any

from local.sqs.errors import SqsError, invalid, missing
from local.sqs.model import Queue, queue_name_from_arn
from local.sqs.storage import Storage
from local.sqs.validation import int_parameter

MAX_MOVE_CHUNK = 500  # messages moved per housekeeping step when no rate is given
MAX_RATE = 500
MAX_LISTED_TASKS = 10


class MoveTasks:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._queues = storage.queues

    def _source(self, params: dict[str, Any]) -> tuple[str, Queue]:
        source_arn = params.get("SourceArn")
        if not source_arn:
            raise missing("SourceArn")
        source = self._queues.get(queue_name_from_arn(source_arn))
        if source is None:
            raise SqsError("ResourceNotFoundException", f"The queue {source_arn} does not exist.")
        return source_arn, source

    def start_message_move_task(self, params: dict[str, Any]) -> dict[str, Any]:
        source_arn, source = self._source(params)
        if not any(queue.redrive and queue.redrive[0] == source.name for queue in self._queues.values()):
            raise invalid("Source queue must be configured as a Dead Letter Queue.")
        destination_arn = params.get("DestinationArn")
        if destination_arn and queue_name_from_arn(destination_arn) not in self._queues:
            raise SqsError("ResourceNotFoundException", f"The queue {destination_arn} does not exist.")
        rate = params.get("MaxNumberOfMessagesPerSecond")
        if rate is not None:
            int_parameter(params, "MaxNumberOfMessagesPerSecond", 1, 1, MAX_RATE)
        if self._storage.has_running_move_task(source):
            raise invalid(
                "There is already a task running. Only one active task is allowed per source queue."
            )
        now = self._storage.now_ms()
        handle = base64.urlsafe_b64encode(
            json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode()
        ).decode()
        self._storage.add_move_task(handle, source, source_arn, destination_arn, rate, now)
        self._advance(handle, now)
        return {"TaskHandle": handle}

    def list_message_move_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        _, source = self._source(params)
        limit = int_parameter(params, "MaxResults", 1, 1, MAX_LISTED_TASKS)
        results = []
        for task in self._storage.latest_move_tasks(source, limit):
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

    def cancel_message_move_task(self, params: dict[str, Any]) -> dict[str, Any]:
        handle = params.get("TaskHandle")
        if not handle:
            raise missing("TaskHandle")
        task = self._storage.move_task(handle)
        if task is None or task["status"] != "RUNNING":
            raise SqsError("ResourceNotFoundException", "Task does not exist or is not running.")
        self._storage.update_move_task(handle, task["moved"], "CANCELLED", task["failure_reason"])
        return {"ApproximateNumberOfMessagesMoved": task["moved"]}

    def advance_running(self, now: int) -> bool:
        """Move the next messages of every running task; whether any task ran."""
        handles = self._storage.running_move_task_handles()
        for handle in handles:
            self._advance(handle, now)
        return bool(handles)

    def _advance(self, handle: str, now: int) -> None:
        task = self._storage.move_task(handle)
        assert task is not None  # a task is never deleted
        source = self._storage.queue_by_id(task["source_queue_id"])
        allowed = task["to_move"] - task["moved"]
        if task["rate"]:
            allowed = min(allowed, (now - task["started_at"]) * task["rate"] // 1000 + 1 - task["moved"])
        moved, failure = 0, None
        if source is not None and allowed > 0:
            for row in self._storage.messages_to_move(source, now, min(allowed, MAX_MOVE_CHUNK)):
                if task["destination_arn"]:
                    destination = self._queues.get(queue_name_from_arn(task["destination_arn"]))
                else:
                    destination = self._storage.queue_by_id(row["dead_letter_source_queue_id"])
                if destination is None:
                    failure = "Message has no source queue to return to; give a DestinationArn."
                    break
                if destination.fifo and not row["group_id"]:
                    failure = "A message without MessageGroupId cannot move to a FIFO queue."
                    break
                self._storage.move_message(row, source, destination, now, source_queue_id=None)
                moved += 1
        total = task["moved"] + moved
        status = "FAILED" if failure else "RUNNING"
        if not failure and (source is None or total >= task["to_move"] or (allowed > 0 and moved == 0)):
            status = "COMPLETED"
        self._storage.update_move_task(handle, total, status, failure)
