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

from tests.sqs.conftest import create_fifo, error_code, sqs_client


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


def test_fifo_send_with_zero_delay_is_accepted(sqs, queue_name):
    """SendMessage API reference, DelaySeconds: "Messages with a positive DelaySeconds value become
    available for processing after the delay period is finished. [...] When you set FifoQueue,
    you can't set DelaySeconds per message. You can set this parameter only on a queue level."
    A zero asks for no delay of the message's own, and SQS accepts it.

    GIVEN a FIFO queue WHEN a message is sent with DelaySeconds 0 THEN it is accepted and
    delivered; WHEN with DelaySeconds 5 THEN InvalidParameterValue."""
    queue_url = create_fifo(sqs, queue_name)

    sqs.send_message(
        QueueUrl=queue_url, MessageBody="now", MessageGroupId="g", MessageDeduplicationId="d", DelaySeconds=0
    )

    assert [message["Body"] for message in sqs.receive_message(QueueUrl=queue_url)["Messages"]] == ["now"]
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody="late",
            MessageGroupId="g",
            MessageDeduplicationId="e",
            DelaySeconds=5,
        )
    assert error_code(excinfo) == "InvalidParameterValue"


def test_default_maximum_message_size_is_one_mebibyte(sqs, queue_name):
    """CreateQueue API reference, MaximumMessageSize: "Valid values: An integer from 1,024 bytes
    (1 KiB) to 1,048,576 bytes (1 MiB). Default: 1,048,576 bytes (1 MiB)."

    GIVEN a queue created without MaximumMessageSize WHEN its attributes are read THEN 1048576;
    WHEN a 1 MiB body is sent THEN it is accepted, one byte more is not."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])
    sqs.send_message(QueueUrl=queue_url, MessageBody="x" * 1_048_576)

    assert attributes["Attributes"] == {"MaximumMessageSize": "1048576"}
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x" * 1_048_577)
    assert error_code(excinfo) == "InvalidParameterValue"


def test_batch_total_is_limited_to_one_mebibyte(sqs, queue_name):
    """SendMessageBatch API reference: "The maximum allowed individual message size and the maximum
    total payload size (the sum of the individual lengths of all of the batched messages) are
    both 1 MiB 1,048,576 bytes."

    GIVEN a queue whose messages may be 1 KiB WHEN ten messages of 1,000 bytes are sent in one
    batch THEN all are accepted (the queue's limit is per message); GIVEN a default queue WHEN a
    batch sums to more than 1 MiB THEN BatchRequestTooLong."""
    small_url = sqs.create_queue(QueueName=f"{queue_name}-small", Attributes={"MaximumMessageSize": "1024"})[
        "QueueUrl"
    ]
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    reply = sqs.send_message_batch(
        QueueUrl=small_url, Entries=[{"Id": str(i), "MessageBody": "x" * 1000} for i in range(10)]
    )

    assert (len(reply["Successful"]), reply.get("Failed", [])) == (10, [])
    with pytest.raises(ClientError) as excinfo:
        sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": "x" * 104_858} for i in range(10)]
        )
    assert error_code(excinfo) == "AWS.SimpleQueueService.BatchRequestTooLong"


@pytest.mark.parametrize(
    ("patterns", "names"),
    [
        (["Name.*"], ["Name.first", "NameTag"]),
        ([".*"], ["Name.first", "NameTag", "Other"]),
        (["All"], ["Name.first", "NameTag", "Other"]),
        (["Other", "Name.first"], ["Name.first", "Other"]),
    ],
    ids=["prefix", "dot-star", "all", "by-name"],
)
def test_message_attribute_names_select_by_name_or_prefix(sqs, queue_name, patterns, names):
    """ReceiveMessage API reference, MessageAttributeNames: "you can return all of the attributes
    by specifying All or .* in your request. You can also use all message attributes starting with
    a prefix, for example bar.*." The earlier wording of the same reference: "You can also use
    "bar.*" to return all message attributes starting with the "bar" prefix." The prefix is what
    precedes ".*" (so ".*" is the empty prefix: all).

    GIVEN a message with attributes Name.first, NameTag and Other WHEN received with these
    MessageAttributeNames THEN exactly the matching attributes come back."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    attributes = {
        name: {"DataType": "String", "StringValue": "v"} for name in ("Name.first", "NameTag", "Other")
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody="m", MessageAttributes=attributes)

    message = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=patterns)["Messages"][0]

    assert sorted(message["MessageAttributes"]) == names


@pytest.mark.parametrize(
    "attribute",
    [{"a b": {"DataType": "String", "StringValue": "v"}}, {"a": {"DataType": "Strin", "StringValue": "v"}}],
    ids=["space-in-name", "unknown-type"],
)
def test_invalid_message_attribute_is_refused(sqs, queue_name, attribute):
    """SQS Developer Guide, "Message attribute components": "Name - The message attribute name can
    contain the following characters: A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.)";
    "Type - The message attribute data type. Supported types include String, Number, and Binary."

    GIVEN a queue WHEN a message attribute has a space in its name or an unknown type THEN
    InvalidParameterValue."""
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=queue_url, MessageBody="m", MessageAttributes=attribute)

    assert error_code(excinfo) == "InvalidParameterValue"
