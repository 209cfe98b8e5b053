"""ingest_console.dead_letters' question of the demo console's reconciliation, against moto's SQS with the
template's dead-letter queue: which of a run's request ids are parked there."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ingest.clients import READ_TIMEOUT_S
from ingest_console import dead_letters
from local.template import Template


@pytest.fixture
def dead_letter_queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = Template().queue("CustomerDeadLetterQueue")
        yield sqs, sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]


def park(sqs: Any, url: str, request_id: str, customer_id: str) -> None:
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"request_id": request_id, "customer_id": customer_id}),
        MessageGroupId=customer_id,
        MessageDeduplicationId=request_id,
    )


def test_the_parked_ids_among_those_asked_are_found_and_left_in_the_queue(dead_letter_queue):
    # GIVEN two records of two customers in the dead-letter queue
    sqs, url = dead_letter_queue
    park(sqs, url, "r-1", "console-abcdef-00001")
    park(sqs, url, "r-2", "console-abcdef-00002")
    # WHEN the console asks about r-1 and r-3 (r-2 is another run's, r-3 was committed)
    parked = dead_letters.parked_among(sqs, url, {"r-1", "r-3"}, limit=100)
    # THEN only r-1 is reported, and both records are still there, visible again for the next look
    assert parked == ["r-1"]
    assert dead_letters.message_count(sqs, url) == 2
    assert dead_letters.parked_among(sqs, url, {"r-1", "r-2"}, limit=100) == ["r-1", "r-2"]


def test_an_empty_dead_letter_queue_parks_nothing(dead_letter_queue):
    # GIVEN an empty dead-letter queue WHEN the console asks about a request id THEN none is parked
    sqs, url = dead_letter_queue
    assert dead_letters.parked_among(sqs, url, {"r-1"}, limit=100) == []


def test_a_dead_lettered_record_held_by_another_look_is_still_counted(dead_letter_queue):
    # GIVEN a record in the dead-letter queue, received (so hidden) by another look at the queue
    sqs, url = dead_letter_queue
    park(sqs, url, "r-1", "console-abcdef-00001")
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    # WHEN the queue's messages are counted THEN the hidden record is one of them
    assert dead_letters.message_count(sqs, url) == 1


def test_a_peek_waits_for_a_record_another_look_holds(dead_letter_queue):
    # GIVEN a record received by another look at the queue, hidden for one more second
    sqs, url = dead_letter_queue
    park(sqs, url, "r-1", "console-abcdef-00001")
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    # WHEN the queue is peeked with receives that wait up to 2 s
    letters = dead_letters.peek(sqs, url, limit=10, wait_s=2)
    # THEN the long poll waits for the record and shows it (a short poll answers at once: nothing)
    assert [letter.request_id for letter in letters] == ["r-1"]


def test_the_consoles_peek_ends_within_its_clients_read_timeout(dead_letter_queue):
    # GIVEN a record in the dead-letter queue that another look holds for longer than the console waits
    sqs, url = dead_letter_queue
    park(sqs, url, "r-1", "console-abcdef-00001")
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    # WHEN the console asks whether r-1 is parked
    started = time.monotonic()
    parked = dead_letters.parked_among(sqs, url, {"r-1"}, limit=100)
    # THEN its long poll ends well within the console's clients' read timeout, having found nothing to show
    assert time.monotonic() - started < READ_TIMEOUT_S
    assert parked == []


def test_a_peek_refuses_a_wait_sqs_does_not_take(dead_letter_queue):
    # GIVEN a wait beyond ReceiveMessage's 20 s WHEN a peek is asked for THEN it is refused before any receive
    sqs, url = dead_letter_queue
    with pytest.raises(ValueError, match="0 to 20 s"):
        dead_letters.peek(sqs, url, limit=10, wait_s=21)
