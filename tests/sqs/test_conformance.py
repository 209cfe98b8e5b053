"""The same boto3 cases against moto's server (the reference) and the emulator.

Where moto departs from the SQS Developer Guide, the case is in test_documented_behaviour.py and
runs against the emulator only.
"""

import hashlib
import json
import re
import threading
import time

import pytest
from botocore.exceptions import ClientError

from tests.sqs.conftest import sqs_client


def create_fifo(sqs, name: str, **attributes) -> str:
    attributes = {"FifoQueue": "true", **{key: str(value) for key, value in attributes.items()}}
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes=attributes)["QueueUrl"]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_create_get_and_list_queues(sqs, queue_name):
    """GIVEN a new FIFO queue WHEN it is looked up by name and listed THEN the same URL comes back."""
    queue_url = create_fifo(sqs, queue_name)

    assert sqs.get_queue_url(QueueName=f"{queue_name}.fifo")["QueueUrl"] == queue_url
    assert queue_url in sqs.list_queues(QueueNamePrefix=queue_name)["QueueUrls"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/\d{{12}}/{queue_name}\.fifo", queue_url)


def test_create_queue_again_with_same_attributes_returns_the_queue(sqs, queue_name):
    """GIVEN a queue WHEN it is created again with the same attributes THEN that is no error."""
    first = create_fifo(sqs, queue_name, VisibilityTimeout=180)

    assert create_fifo(sqs, queue_name, VisibilityTimeout=180) == first


def test_unknown_queue_raises_queue_does_not_exist(sqs):
    """GIVEN no such queue WHEN its URL is asked for THEN boto3 raises QueueDoesNotExist with the
    legacy code SQS reports on its JSON protocol."""
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as excinfo:
        sqs.get_queue_url(QueueName="no-such-queue")

    assert error_code(excinfo) == "AWS.SimpleQueueService.NonExistentQueue"


def test_fifo_send_without_group_is_missing_parameter(sqs, queue_name):
    """GIVEN a FIFO queue WHEN a message has no MessageGroupId THEN MissingParameter."""
    queue_url = create_fifo(sqs, queue_name, ContentBasedDeduplication="true")

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x")

    assert error_code(excinfo) == "MissingParameter"


def test_fifo_send_without_deduplication_id_is_invalid(sqs, queue_name):
    """GIVEN a FIFO queue without content-based deduplication WHEN a message has no
    MessageDeduplicationId THEN InvalidParameterValue."""
    queue_url = create_fifo(sqs, queue_name)

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageGroupId="g")

    assert error_code(excinfo) == "InvalidParameterValue"


def test_duplicate_deduplication_id_is_accepted_once(sqs, queue_name):
    """GIVEN a message sent WHEN it is sent again with the same MessageDeduplicationId
    THEN both sends succeed and only one message is delivered."""
    queue_url = create_fifo(sqs, queue_name)
    for _ in range(2):
        sqs.send_message(
            QueueUrl=queue_url, MessageBody="once", MessageGroupId="g", MessageDeduplicationId="d1"
        )

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]

    assert [message["Body"] for message in messages] == ["once"]


def test_content_based_deduplication_uses_the_body(sqs, queue_name):
    """GIVEN ContentBasedDeduplication WHEN the same body is sent twice and another once
    THEN two messages are delivered."""
    queue_url = create_fifo(sqs, queue_name, ContentBasedDeduplication="true")
    for body in ("same", "same", "other"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageGroupId="g")

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]

    assert [message["Body"] for message in messages] == ["same", "other"]


def test_fifo_group_is_delivered_in_order(sqs, queue_name):
    """GIVEN five messages in one group WHEN received THEN in send order, with the FIFO system
    attributes."""
    queue_url = create_fifo(sqs, queue_name)
    sent = [
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"d{i}"
        )
        for i in range(5)
    ]

    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]

    assert [message["Body"] for message in messages] == [f"m{i}" for i in range(5)]
    first = messages[0]["Attributes"]
    assert first["MessageGroupId"] == "g"
    assert first["MessageDeduplicationId"] == "d0"
    assert first["ApproximateReceiveCount"] == "1"
    assert first["SequenceNumber"] == sent[0]["SequenceNumber"]


def test_md5_of_body_and_attributes(sqs, queue_name):
    """GIVEN a message with attributes WHEN sent and received THEN the MD5 digests are SQS's."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    attributes = {
        "tenant": {"DataType": "String", "StringValue": "acme"},
        "attempt": {"DataType": "Number", "StringValue": "3"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }

    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="body", MessageAttributes=attributes)
    received = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"][0]

    assert sent["MD5OfMessageBody"] == hashlib.md5(b"body", usedforsecurity=False).hexdigest()
    # The attribute digest of send and receive agree; test_md5_of_attributes_matches_between_backends
    # checks it against moto.
    assert sent["MD5OfMessageAttributes"] == received["MD5OfMessageAttributes"]
    assert received["MessageAttributes"]["tenant"]["StringValue"] == "acme"
    assert received["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"


def test_md5_of_attributes_matches_between_backends(moto_endpoint, emulator_endpoint, queue_name):
    """GIVEN the same message attributes WHEN sent to moto and to the emulator THEN the same digest."""
    attributes = {
        "a": {"DataType": "String", "StringValue": "x"},
        "n": {"DataType": "Number", "StringValue": "1"},
    }
    digests = set()
    for endpoint in (moto_endpoint, emulator_endpoint):
        sqs = sqs_client(endpoint)
        queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        digests.add(
            sqs.send_message(QueueUrl=queue_url, MessageBody="b", MessageAttributes=attributes)[
                "MD5OfMessageAttributes"
            ]
        )

    assert len(digests) == 1


def test_visibility_timeout_hides_then_change_visibility_returns_it(sqs, queue_name):
    """GIVEN a received message WHEN received again at once THEN nothing; WHEN its visibility is
    set to 0 THEN it is delivered again with ApproximateReceiveCount 2."""
    queue_url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")
    first = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]

    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)

    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    again = sqs.receive_message(QueueUrl=queue_url, MessageSystemAttributeNames=["ApproximateReceiveCount"])

    assert again["Messages"][0]["MessageId"] == first["MessageId"]
    assert again["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_deleted_message_is_gone(sqs, queue_name):
    """GIVEN a received message WHEN deleted and its visibility would have expired THEN never again."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")
    message = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=1)["Messages"][0]

    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)


def test_delay_seconds_hides_a_new_message(sqs, queue_name):
    """GIVEN a standard queue WHEN a message is sent with DelaySeconds THEN it is not yet visible."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=60)

    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        (
            [{"Id": str(i), "MessageBody": "x"} for i in range(11)],
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        ),
        (
            [{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}],
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        ),
        ([{"Id": "not valid!", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
    ],
    ids=["empty", "eleven", "repeated-id", "bad-id"],
)
def test_batch_limits(sqs, queue_name, entries, code):
    """GIVEN a batch that breaks a limit WHEN sent THEN the whole request fails with SQS's code."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)

    assert error_code(excinfo) == code


def test_invalid_receipt_handle(sqs, queue_name):
    """GIVEN a queue WHEN a message is deleted with a made-up handle THEN ReceiptHandleIsInvalid."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle="garbage")


def test_message_larger_than_maximum_is_rejected(sqs, queue_name):
    """GIVEN MaximumMessageSize 1024 WHEN a 1025-byte body is sent THEN InvalidParameterValue."""
    queue_url = sqs.create_queue(QueueName=queue_name, Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x" * 1025)

    assert error_code(excinfo) == "InvalidParameterValue"
    sqs.send_message(QueueUrl=queue_url, MessageBody="x" * 1024)


def test_receive_more_than_ten_is_invalid(sqs, queue_name):
    """GIVEN a queue WHEN MaxNumberOfMessages is 11 THEN InvalidParameterValue."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(ClientError) as excinfo:
        sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=11)

    assert error_code(excinfo) == "InvalidParameterValue"


def test_redrive_moves_message_after_max_receive_count(sqs, queue_name):
    """GIVEN maxReceiveCount 2 WHEN a message is received twice and not deleted THEN the next
    receive finds it in the dead-letter queue, not in the source queue."""
    dead_letter_url = create_fifo(sqs, f"{queue_name}-dlq")
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 2})
    queue_url = create_fifo(sqs, queue_name, RedrivePolicy=policy)
    sqs.send_message(QueueUrl=queue_url, MessageBody="poison", MessageGroupId="g", MessageDeduplicationId="p")

    for _ in range(2):
        message = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url)
    moved = sqs.receive_message(QueueUrl=dead_letter_url)["Messages"]
    assert [message["Body"] for message in moved] == ["poison"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=dead_letter_url)["queueUrls"] == [queue_url]


def test_queue_attributes_count_messages(sqs, queue_name):
    """GIVEN three messages, one of them received WHEN attributes are read THEN 2 visible, 1 in flight."""
    queue_url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(i))
    sqs.receive_message(QueueUrl=queue_url)

    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]

    assert attributes["ApproximateNumberOfMessages"] == "2"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attributes["VisibilityTimeout"] == "45"
    assert re.fullmatch(rf"arn:aws:sqs:us-east-1:\d{{12}}:{queue_name}", attributes["QueueArn"])


def test_set_queue_attributes(sqs, queue_name):
    """GIVEN a queue WHEN its visibility timeout is changed THEN reading it shows the new value."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "180"})

    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"
    ]
    assert attributes == {"VisibilityTimeout": "180"}


def test_delete_queue(sqs, queue_name):
    """GIVEN a queue WHEN deleted THEN it cannot be found."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    sqs.delete_queue(QueueUrl=queue_url)

    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=queue_name)


def test_long_poll_waits_for_a_send(sqs, queue_name):
    """GIVEN an empty queue and a receive waiting up to 5 s WHEN a message is sent meanwhile
    THEN the receive returns it well before the wait ends."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="wake")).start()

    started = time.monotonic()
    reply = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)

    assert [message["Body"] for message in reply["Messages"]] == ["wake"]
    assert time.monotonic() - started < 3


def test_long_poll_on_empty_queue_waits_and_returns_nothing(sqs, queue_name):
    """GIVEN an empty queue WHEN a receive waits 1 s THEN it returns nothing after about 1 s."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    started = time.monotonic()
    reply = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)

    assert "Messages" not in reply
    assert 0.9 <= time.monotonic() - started < 3
