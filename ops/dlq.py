"""The dead-letter queue: look at what is in it, and move it back to the queue once the cause is fixed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ops.progress import Waiter
from ops.stack import OperatorError

# How long a peeked message stays hidden while the next ones are read; they are made visible again at
# the end of the peek (ChangeMessageVisibility 0), so this only bounds an interrupted peek.
PEEK_HOLD_S = 30
FINISHED_MOVE = ("COMPLETED", "CANCELLED", "FAILED")


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    request_id: str | None
    customer_id: str | None
    receive_count: int
    # SentTimestamp: when the consumer, which moves a poison record itself, sent it to the dead-letter
    # queue. Why it failed is in the consumer's log.
    sent_at_ms: int


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def message_count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def peek(sqs: Any, dead_letter_url: str, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead-lettered messages, left in the queue and visible again when this returns.

    SQS has no read without receive: each message shown costs one receive (its ApproximateReceiveCount
    grows by one). The messages are held hidden while the peek pages through the queue, so none is
    counted twice, and released at once afterwards. A FIFO queue shows the first message of each message
    group (the others stay locked behind it), which for this stack is the record that blocked its customer.
    """
    held: list[dict[str, Any]] = []
    try:
        while len(held) < limit:
            received = sqs.receive_message(
                QueueUrl=dead_letter_url,
                MaxNumberOfMessages=min(10, limit - len(held)),
                VisibilityTimeout=PEEK_HOLD_S,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            ).get("Messages", [])
            if not received:
                break
            held.extend(received)
    finally:
        _release(sqs, dead_letter_url, held)
    return [_dead_letter(message) for message in held]


def _release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for number, message in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = None
    fields = body if isinstance(body, dict) else {}
    attributes = message.get("Attributes", {})
    return DeadLetter(
        message_id=message["MessageId"],
        request_id=fields.get("request_id"),
        customer_id=fields.get("customer_id"),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at_ms=int(attributes.get("SentTimestamp", 0)),
    )


@dataclass(frozen=True)
class RedriveResult:
    status: str
    moved: int
    to_move: int
    failure_reason: str | None
    left_in_dead_letter_queue: int


def redrive(
    sqs: Any, dead_letter_url: str, queue_url: str, waiter: Waiter, timeout_s: float = 3600
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

    def finished() -> dict[str, Any] | None:
        # The newest task first; a task loses its handle once it stops running, so it is found as the newest.
        task: dict[str, Any] = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"][0]
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
