"""Documented SQS behaviour where moto's server departs from the SQS documentation: emulator only.
Each test quotes the documentation it checks."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from tests.sqs.conftest import create_fifo, error_code


def send(sqs, queue_url: str, body: str, group: str = "g") -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)


def bodies(reply: dict) -> list[str]:
    return [message["Body"] for message in reply.get("Messages", [])]


def test_in_flight_message_locks_its_group(emulator_sqs, queue_name):
    """AWS Knowledge Center, "sqs-fifo-messages-not-returned": "Messages that are received but not
    yet deleted are in the inflight state. Inflight messages block delivery of available messages
    within the same message group." (moto delivers the next message of the group.)

    GIVEN two messages in one group WHEN the first is received and not deleted THEN the second is
    not delivered; WHEN the first is deleted THEN the second is delivered."""
    sqs = emulator_sqs
    queue_url = create_fifo(sqs, queue_name)
    send(sqs, queue_url, "first")
    send(sqs, queue_url, "second")

    first = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
    assert bodies(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)) == []

    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"])
    assert bodies(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)) == ["second"]


def test_locked_group_does_not_hold_back_other_groups(emulator_sqs, queue_name):
    """Same article: "The ReceiveMessage API call can also return messages from other available
    message groups."

    GIVEN group a in flight and a message waiting in group b WHEN receiving THEN b's message comes."""
    sqs = emulator_sqs
    queue_url = create_fifo(sqs, queue_name)
    send(sqs, queue_url, "a1", "a")
    send(sqs, queue_url, "a2", "a")
    send(sqs, queue_url, "b1", "b")

    assert bodies(sqs.receive_message(QueueUrl=queue_url)) == ["a1"]
    assert bodies(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)) == ["b1"]


def test_group_unlocks_when_visibility_expires(emulator_sqs, queue_name):
    """Same article: "You can wait until the message visibility timeout period expires to allow
    message redelivery."

    GIVEN a message received with a 1 s visibility timeout WHEN it expires THEN the same message
    (the group's head) is delivered again, before the next one."""
    sqs = emulator_sqs
    queue_url = create_fifo(sqs, queue_name)
    send(sqs, queue_url, "head")
    send(sqs, queue_url, "next")
    sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=1)

    again = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=3)

    assert bodies(again) == ["head"]


def test_stale_receipt_handle_does_not_delete(emulator_sqs, queue_name):
    """DeleteMessage API reference: "If you use an old ReceiptHandle, the request will succeed, but
    the message might not be deleted."

    GIVEN a message received twice WHEN deleted with the first handle THEN the call succeeds and
    the message remains; WHEN deleted with the latest handle THEN it is gone."""
    sqs = emulator_sqs
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")
    old = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"][0]["ReceiptHandle"]
    latest = sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"][0]["ReceiptHandle"]

    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=old)
    assert bodies(sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)) == ["m"]

    latest = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=latest)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"]
        == attributes["ApproximateNumberOfMessagesNotVisible"]
        == "0"
    )


def test_sequence_numbers_increase(emulator_sqs, queue_name):
    """SendMessage API reference, SequenceNumber: "The large, non-consecutive number that Amazon SQS
    assigns to each message. The length of SequenceNumber is 128 bits. SequenceNumber continues to
    increase for a particular MessageGroupId." (moto's are random.)

    GIVEN five sends to one group WHEN their sequence numbers are compared THEN they increase."""
    sqs = emulator_sqs
    queue_url = create_fifo(sqs, queue_name)
    replies = [
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=f"m{i}", MessageGroupId="g", MessageDeduplicationId=f"{i}"
        )
        for i in range(5)
    ]

    numbers = [int(reply["SequenceNumber"]) for reply in replies]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 5


def test_body_with_forbidden_characters_is_rejected(emulator_sqs, queue_name):
    """SendMessage API reference: allowed are "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
    #x10000 to #x10FFFF"; "If a message contains characters outside the allowed set, Amazon SQS
    rejects the message and returns an InvalidMessageContents error." (moto accepts it.)

    GIVEN a body with a BEL character WHEN sent THEN InvalidMessageContents."""
    sqs = emulator_sqs
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(sqs.exceptions.InvalidMessageContents):
        sqs.send_message(QueueUrl=queue_url, MessageBody="bell \x07")


def test_deduplication_scope_message_group(emulator_sqs, queue_name):
    """FIFO high throughput: with DeduplicationScope messageGroup "the message deduplication scope
    is within each individual message group" (SendMessage MessageDeduplicationId docs).

    GIVEN messageGroup scope WHEN the same deduplication id is used in two groups THEN both are
    delivered; WHEN reused in the same group THEN only once."""
    sqs = emulator_sqs
    queue_url = create_fifo(
        sqs, queue_name, DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId"
    )
    for group in ("a", "b", "a"):
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=group, MessageGroupId=group, MessageDeduplicationId="same"
        )

    assert sorted(bodies(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10))) == ["a", "b"]


def test_queue_url_uses_the_local_account(emulator_sqs, queue_name):
    """GIVEN the emulator WHEN a queue is created THEN its URL is http://127.0.0.1:PORT/000000000000/NAME."""
    queue_url = emulator_sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    assert queue_url.split("/")[3:] == ["000000000000", queue_name]


def dead_letter_pair(sqs, queue_name: str, max_receive_count: int = 1) -> tuple[str, str, str]:
    dead_letter_url = create_fifo(sqs, f"{queue_name}-dlq")
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count})
    return create_fifo(sqs, queue_name, RedrivePolicy=policy), dead_letter_url, dead_letter_arn


def receive_past_max_count(sqs, queue_url: str, count: int) -> None:
    """With maxReceiveCount 1: receive `count` messages once each and leave them undeleted; each
    next receive moves the previous one to the dead-letter queue."""
    for _ in range(count):
        message = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert bodies(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)) == []


def wait_for_task(sqs, dead_letter_arn: str) -> dict:
    for _ in range(100):
        task = sqs.list_message_move_tasks(SourceArn=dead_letter_arn)["Results"][0]
        if task["Status"] != "RUNNING":
            return task
        time.sleep(0.05)
    raise AssertionError("move task did not finish")


def test_message_move_task_returns_fifo_messages_to_their_source_in_order(emulator_sqs, queue_name):
    """StartMessageMoveTask API reference: "If this field [DestinationArn] is left blank, the
    messages will be redriven back to their respective original source queues."

    GIVEN three messages of one group moved to the dead-letter queue WHEN a move task runs without
    a destination THEN they are back in the source queue, in their original order."""
    sqs = emulator_sqs
    queue_url, dead_letter_url, dead_letter_arn = dead_letter_pair(sqs, queue_name)
    for body in ("m1", "m2", "m3"):
        send(sqs, queue_url, body)
    receive_past_max_count(sqs, queue_url, 3)
    attributes = sqs.get_queue_attributes(
        QueueUrl=dead_letter_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "3"

    sqs.start_message_move_task(SourceArn=dead_letter_arn)
    task = wait_for_task(sqs, dead_letter_arn)

    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 3)
    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        received += [message["Body"] for message in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                for i, message in enumerate(messages)
            ],
        )
    assert received == ["m1", "m2", "m3"]


def test_only_one_move_task_per_queue_and_cancel(emulator_sqs, queue_name):
    """StartMessageMoveTask API reference: "Only one active message movement task is supported per
    queue at any given time."

    GIVEN a slow move task running WHEN a second is started THEN it is refused; WHEN the first is
    cancelled THEN it is listed as CANCELLED."""
    sqs = emulator_sqs
    queue_url, _, dead_letter_arn = dead_letter_pair(sqs, queue_name)
    for i in range(3):
        send(sqs, queue_url, f"m{i}", group=f"g{i}")
    receive_past_max_count(sqs, queue_url, 3)

    handle = sqs.start_message_move_task(SourceArn=dead_letter_arn, MaxNumberOfMessagesPerSecond=1)[
        "TaskHandle"
    ]
    with pytest.raises(sqs.exceptions.ClientError):
        sqs.start_message_move_task(SourceArn=dead_letter_arn)
    sqs.cancel_message_move_task(TaskHandle=handle)

    assert sqs.list_message_move_tasks(SourceArn=dead_letter_arn)["Results"][0]["Status"] == "CANCELLED"


def test_purge_queue_removes_messages_once_a_minute(emulator_sqs, queue_name):
    """PurgeQueue API reference: "Only one PurgeQueue operation on a queue is allowed every 60 seconds."

    GIVEN messages WHEN purged THEN none remain; WHEN purged again at once THEN PurgeQueueInProgress."""
    sqs = emulator_sqs
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="m")

    sqs.purge_queue(QueueUrl=queue_url)

    assert bodies(sqs.receive_message(QueueUrl=queue_url)) == []
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=queue_url)


@pytest.mark.parametrize(
    ("entry", "content_based"),
    [
        ({"MessageDeduplicationId": "d2"}, "true"),
        ({"MessageGroupId": "g"}, "false"),
    ],
    ids=["no-group-id", "no-deduplication-id"],
)
def test_fifo_batch_entry_without_its_ids_fails_the_whole_request(
    emulator_sqs, queue_name, entry, content_based
):
    """SendMessageBatch API reference, MessageGroupId: "If you do not provide a MessageGroupId when
    sending a message to a FIFO queue, the action fails."; MessageDeduplicationId: "If you don't
    provide a MessageDeduplicationId and the queue doesn't have ContentBasedDeduplication set, the
    action fails with an error." The action is the whole SendMessageBatch: SQS answers 400
    InvalidParameterValue "The request must contain the parameter MessageGroupId." (as reported
    against SQS in Jimdo/sqs-dead-letter-handling#10). moto answers MissingParameter.

    GIVEN a FIFO queue WHEN a batch has one good entry and one without its group (or deduplication)
    id THEN the request fails with InvalidParameterValue and not even the good entry is enqueued."""
    sqs = emulator_sqs
    queue_url = create_fifo(sqs, queue_name, ContentBasedDeduplication=content_based)
    good = {"Id": "good", "MessageBody": "good", "MessageGroupId": "g", "MessageDeduplicationId": "d1"}

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[good, {"Id": "bad", "MessageBody": "bad", **entry}]
        )

    assert error_code(excinfo) == "InvalidParameterValue"
    assert bodies(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)) == []


def test_fifo_suffix_needs_the_fifo_queue_attribute(emulator_sqs, queue_name):
    """CreateQueue API reference, FifoQueue: "If you don't specify the FifoQueue attribute, Amazon
    SQS creates a standard queue."; QueueName: "Valid values: alphanumeric characters, hyphens (-),
    and underscores (_). A FIFO queue name must end with the .fifo suffix." A standard queue's name
    has no period, so SQS refuses the name. (moto creates a standard queue named x.fifo.)

    GIVEN no FifoQueue attribute WHEN a queue named *.fifo is created THEN InvalidParameterValue;
    GIVEN FifoQueue=true WHEN the name lacks the suffix THEN InvalidParameterValue."""
    sqs = emulator_sqs

    with pytest.raises(ClientError) as without_attribute:
        sqs.create_queue(QueueName=f"{queue_name}.fifo")
    with pytest.raises(ClientError) as without_suffix:
        sqs.create_queue(QueueName=queue_name, Attributes={"FifoQueue": "true"})

    assert error_code(without_attribute) == error_code(without_suffix) == "InvalidParameterValue"
    assert sqs.list_queues(QueueNamePrefix=queue_name).get("QueueUrls", []) == []


def string_attribute(value: str = "v", data_type: str = "String") -> dict:
    return {"DataType": data_type, "StringValue": value}


@pytest.mark.parametrize(
    "attributes",
    [
        {"AWS.trace": string_attribute()},
        {"amazon.Trace": string_attribute()},
        {".leading": string_attribute()},
        {"trailing.": string_attribute()},
        {"two..periods": string_attribute()},
        {"n" * 257: string_attribute()},
        {f"a{i}": string_attribute() for i in range(11)},
        {"count": string_attribute("many", "Number")},
        {"label": string_attribute("v", "String" + "x" * 251)},
    ],
    ids=[
        "aws-prefix",
        "amazon-prefix-any-case",
        "leading-period",
        "trailing-period",
        "double-period",
        "name-257",
        "eleven-attributes",
        "number-not-a-number",
        "type-not-a-label",
    ],
)
def test_message_attributes_outside_the_documented_rules_are_refused(emulator_sqs, queue_name, attributes):
    """SQS Developer Guide, "Message attribute components": a name "Can be up to 256 characters
    long", "Can't start with AWS. or Amazon. (or any casing variations)", "Must not start or end
    with a period", "Must not have periods in a sequence"; "Each message can have up to 10
    attributes"; Type: "Supported types include String, Number, and Binary. You can also add custom
    information for any data type." (as "Number.float"); for Number "you must use StringValue"
    holding a number. (moto accepts all of these but the type.)

    GIVEN a queue WHEN a message's attributes break one rule THEN InvalidParameterValue."""
    queue_url = emulator_sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(ClientError) as excinfo:
        emulator_sqs.send_message(QueueUrl=queue_url, MessageBody="m", MessageAttributes=attributes)

    assert error_code(excinfo) == "InvalidParameterValue"


def test_message_attributes_within_the_documented_rules_are_accepted(emulator_sqs, queue_name):
    """Same guide: custom types append a label to String, Number or Binary; a name may be 256
    characters and contain periods (not in a sequence).

    GIVEN a queue WHEN ten attributes use custom types and the longest name THEN the message is
    accepted and returns them."""
    queue_url = emulator_sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    attributes = {
        "n" * 256: string_attribute(),
        "price.eur": string_attribute("-1.5e3", "Number.float"),
        "picture": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a"},
        "tenant.id": string_attribute("acme", "String.tenant"),
        **{f"a{i}": string_attribute() for i in range(6)},
    }

    emulator_sqs.send_message(QueueUrl=queue_url, MessageBody="m", MessageAttributes=attributes)

    message = emulator_sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"][0]
    assert message["MessageAttributes"] == attributes
