"""A queue's depth as SQS approximates it: the one reading the demo consoles, the operator CLI, the local
stack's drills and the benchmarks share."""

from __future__ import annotations

from typing import Any

VISIBLE, IN_FLIGHT = "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages: in flight are those a receive holds hidden, still in the queue."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[VISIBLE, IN_FLIGHT])["Attributes"]
    return int(attributes[VISIBLE]), int(attributes[IN_FLIGHT])
