"""A queue's depth as SQS approximates it: the one reading the demo consoles, the operator CLI, the local
stack's drills and the benchmarks share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # boto3-stubs' types: development only, the layer does not ship them
    from mypy_boto3_sqs import SQSClient

VISIBLE: Final = "ApproximateNumberOfMessages"
IN_FLIGHT: Final = "ApproximateNumberOfMessagesNotVisible"


def queue_depth(sqs: SQSClient, url: str) -> tuple[int, int]:
    """(visible, in flight) messages: in flight are those a receive holds hidden, still in the queue."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[VISIBLE, IN_FLIGHT])["Attributes"]
    return int(attributes[VISIBLE]), int(attributes[IN_FLIGHT])
