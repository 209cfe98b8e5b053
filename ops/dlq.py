"""The dead-letter queue: move it back to the queue once the cause is fixed (ingest_console.dead_letters
looks at what is in it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest_console.dead_letters import message_count
from ops.progress import Waiter
from ops.stack import OperatorError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ListMessageMoveTasksResultEntryTypeDef

FINISHED_MOVE = ("COMPLETED", "CANCELLED", "FAILED")


def queue_arn(sqs: SQSClient, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


@dataclass(frozen=True)
class RedriveResult:
    status: str
    moved: int
    to_move: int
    failure_reason: str | None
    left_in_dead_letter_queue: int


def redrive(
    sqs: SQSClient, dead_letter_url: str, queue_url: str, waiter: Waiter, timeout_s: float = 3600
) -> RedriveResult:
    """Move every dead-lettered message back to `queue_url` (StartMessageMoveTask) and follow the task
    (ListMessageMoveTasks) until it ends. The database's request_id key makes a redriven record that was
    already stored harmless."""
    source_arn = queue_arn(sqs, dead_letter_url)
    if message_count(sqs, dead_letter_url) == 0:
        return RedriveResult("NOTHING_TO_MOVE", 0, 0, None, 0)
    handle = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=queue_arn(sqs, queue_url))[
        "TaskHandle"
    ]
    waiter.say(f"message move task started: {handle}")

    def finished() -> ListMessageMoveTasksResultEntryTypeDef | None:
        # The newest task first; a task loses its handle once it stops running, so it is found as the newest.
        listed = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        if not listed:
            # Not listed yet, or no longer: the wait goes on until the task shows or the timeout ends it.
            waiter.say(f"SQS lists no message move task from {source_arn} yet")
            return None
        task = listed[0]
        if task["Status"] in FINISHED_MOVE:
            return task
        waiter.say(
            f"moved {task.get('ApproximateNumberOfMessagesMoved', 0)}"
            f" of {task.get('ApproximateNumberOfMessagesToMove', '?')}"
        )
        return None

    task = waiter.until("the message move task", finished, timeout_s)
    result = RedriveResult(
        status=task["Status"],
        moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
        to_move=int(task.get("ApproximateNumberOfMessagesToMove", 0)),
        failure_reason=task.get("FailureReason"),
        left_in_dead_letter_queue=message_count(sqs, dead_letter_url),
    )
    if result.status != "COMPLETED":
        raise OperatorError(
            f"the message move task ended {result.status}: {result.failure_reason or 'no reason'}"
        )
    return result
