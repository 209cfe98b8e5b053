"""The dead-letter queue, looked at without taking anything out of it: the operator CLI's peek and the
demo console's reconciliation (which of a run's requests are parked there) read it the same way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # boto3-stubs' types: development only, the layer does not ship them
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef, MessageTypeDef

from ingest_console.queues import queue_depth

# How long a peeked message stays hidden while the next ones are read; they are made visible again at
# the end of the peek (ChangeMessageVisibility 0), so this only bounds an interrupted peek.
PEEK_HOLD_S = 30
# A peek long-polls: a short poll (WaitTimeSeconds 0) asks only a sample of SQS's servers and can answer
# nothing while the queue holds messages; a long poll asks all of them and answers as soon as one has a
# message ("Amazon SQS short and long polling", SQS Developer Guide). The last receive of a peek, which
# finds nothing more, waits the whole time, so each caller bounds it: the console's below its clients'
# 3 s read timeout (ingest.clients.READ_TIMEOUT_S), the operator CLI longer.
CONSOLE_PEEK_WAIT_S = 1
LONGEST_WAIT_S = 20  # ReceiveMessage's WaitTimeSeconds is 0 to 20


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    request_id: str | None
    customer_id: str | None
    receive_count: int
    # SentTimestamp: when the consumer, which moves a poison record itself, sent it to the dead-letter
    # queue. Why it failed is in the consumer's log.
    sent_at_ms: int


def message_count(sqs: SQSClient, url: str) -> int:
    """Messages in the queue, those hidden by a receive in progress too (a peek from another console
    tab or the ops CLI): a record being looked at is still dead-lettered."""
    return sum(queue_depth(sqs, url))


def peek(sqs: SQSClient, dead_letter_url: str, limit: int, wait_s: int) -> list[DeadLetter]:
    """Up to `limit` dead-lettered messages, left in the queue and visible again when this returns.

    SQS has no read without receive: each message shown costs one receive (its ApproximateReceiveCount
    grows by one). The messages are held hidden while the peek pages through the queue, so none is
    counted twice, and released at once afterwards. A FIFO queue shows the first message of each message
    group (the others stay locked behind it), which for this stack is the record that blocked its customer.
    Each receive long-polls up to `wait_s` seconds (0 to 20); the peek ends at the first that finds nothing.
    """
    return [_dead_letter(message) for message in peek_messages(sqs, dead_letter_url, limit, wait_s)]


def peek_messages(sqs: SQSClient, dead_letter_url: str, limit: int, wait_s: int) -> list[MessageTypeDef]:
    """The messages `peek` shows, as ReceiveMessage returned them: for a reader of their bodies."""
    if not 0 <= wait_s <= LONGEST_WAIT_S:
        raise ValueError(f"a receive waits 0 to {LONGEST_WAIT_S} s, not {wait_s}")
    held: list[MessageTypeDef] = []
    try:
        while len(held) < limit:
            received = sqs.receive_message(
                QueueUrl=dead_letter_url,
                MaxNumberOfMessages=min(10, limit - len(held)),
                VisibilityTimeout=PEEK_HOLD_S,
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            ).get("Messages", [])
            if not received:
                break
            held.extend(received)
    finally:
        _release(sqs, dead_letter_url, held)
    return held


def parked_among(sqs: SQSClient, dead_letter_url: str, request_ids: set[str], limit: int) -> list[str]:
    """Which of `request_ids` are parked in the dead-letter queue: a peek of up to `limit` messages, and
    no receive at all while the queue is empty (the usual case). The demo consoles ask this on every
    reconciliation, within their clients' short timeouts: the peek waits CONSOLE_PEEK_WAIT_S."""
    if message_count(sqs, dead_letter_url) == 0:
        return []
    parked = peek(sqs, dead_letter_url, limit, CONSOLE_PEEK_WAIT_S)
    return sorted({letter.request_id for letter in parked if letter.request_id in request_ids})


def _release(sqs: SQSClient, url: str, messages: list[MessageTypeDef]) -> None:
    for start in range(0, len(messages), 10):
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for number, message in enumerate(messages[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _dead_letter(message: MessageTypeDef) -> DeadLetter:
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
