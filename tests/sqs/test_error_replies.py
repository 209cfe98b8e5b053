"""Every request gets an SQS reply: generated malformed requests over HTTP, the crashers found
before, the last-resort 500 and the answer to actions the emulator does not serve."""

import http.client
import json
import logging
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.model import Shape
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from local.sqs.core import QueueStore
from local.sqs.errors import SqsError
from local.sqs.server import SqsServer
from tests.sqs.conftest import sqs_client

SQS_MODEL = botocore.session.get_session().get_service_model("sqs")
STANDARD_QUEUE, FIFO_QUEUE = "malformed-requests", "malformed-requests.fifo"
# The emulator finds a queue by the last segment of its URL, whatever the host.
QUEUE_URLS = [f"http://127.0.0.1/000000000000/{name}" for name in (STANDARD_QUEUE, FIFO_QUEUE)]
QUEUE_ARNS = [f"arn:aws:sqs:us-east-1:000000000000:{name}" for name in (STANDARD_QUEUE, FIFO_QUEUE)]
ODD_FRAGMENTS = [
    "\ud800",  # lone surrogates: JSON escapes that encode no character
    "\udfff",
    "\U0001f600",
    "²",  # a digit to str.isdigit, not to int()
    "١٢",  # digits of another script, which int() reads
    "\x00",
    "\x07",
    ".",
    "..",
    "AWS.",
    ".fifo",
    ".*",
    "All",
    "9" * 25,
    "-1",
    "String",
    "Number.",
    "Binary",
    '{"deadLetterTargetArn": 5, "maxReceiveCount": []}',
    f'{{"deadLetterTargetArn": "{QUEUE_ARNS[0]}", "maxReceiveCount": 1e400}}',
    *QUEUE_URLS,
    *QUEUE_ARNS,
]
# Map keys: queue and message attribute names (not ReceiveMessageWaitTimeSeconds: a queue that
# long-polls by default would make every receive of the test wait).
ATTRIBUTE_NAMES = ["VisibilityTimeout", "MaximumMessageSize", "RedrivePolicy", "FifoQueue", "DelaySeconds"]

odd_strings = st.lists(st.one_of(st.text(max_size=4), st.sampled_from(ODD_FRAGMENTS)), max_size=4).map(
    "".join
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 10, 20, 900, 2**31, 2**63, -(2**63) - 1]),
    st.floats(),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, odd_strings)
junk = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(odd_strings, children, max_size=3)
    ),
    max_leaves=8,
)


# Members whose plausible values reach the action behind (an existing queue, a handle's form).
PLAUSIBLE = {
    "QueueUrl": st.sampled_from(QUEUE_URLS),
    "QueueName": st.sampled_from([STANDARD_QUEUE, FIFO_QUEUE, "other", "other.fifo"]),
    "SourceArn": st.sampled_from(QUEUE_ARNS),
    "DestinationArn": st.sampled_from(QUEUE_ARNS),
    "ReceiptHandle": st.sampled_from(["1.t", "2.t", "1.", ".t", "0x1.t", "1e3.t"]),
    "MessageGroupId": st.sampled_from(["g", "g h", ""]),
    "MessageDeduplicationId": st.sampled_from(["d", "e", "d\x7f"]),
    "Id": st.sampled_from(["a", "b", "a b"]),
}


def shaped(shape: Shape, name: str = "") -> st.SearchStrategy[Any]:
    """Values of the shape's JSON type (with odd contents), or junk of any type."""
    if shape.type_name == "structure":
        members, required = shape.members, shape.required_members  # type: ignore[attr-defined]
        optional = sorted(set(members) - set(required))
        typed: st.SearchStrategy[Any] = (
            st.lists(st.sampled_from(optional), unique=True).flatmap(
                lambda names: st.fixed_dictionaries(
                    {member: shaped(members[member], member) for member in [*required, *names]}
                )
            )
            if optional
            else st.fixed_dictionaries({member: shaped(members[member], member) for member in required})
        )
    elif shape.type_name == "list":
        typed = st.lists(shaped(shape.member), max_size=11)  # type: ignore[attr-defined]
    elif shape.type_name == "map":
        keys = st.one_of(st.sampled_from(ATTRIBUTE_NAMES), odd_strings)
        typed = st.dictionaries(keys, shaped(shape.value), max_size=3)  # type: ignore[attr-defined]
    elif shape.type_name == "integer":
        typed = numbers
    elif shape.type_name == "blob":
        typed = st.one_of(st.sampled_from(["", "YQ==", "AAEC"]), odd_strings)
    else:
        typed = odd_strings
    if name in PLAUSIBLE:
        typed = st.one_of(PLAUSIBLE[name], PLAUSIBLE[name], typed)
    # Mostly the right type, so that the actions behind are reached.
    return st.one_of(typed, typed, typed, junk)


def request_strategy(action: str) -> st.SearchStrategy[Any]:
    shape = SQS_MODEL.operation_model(action).input_shape if action in SQS_MODEL.operation_names else None
    return junk if shape is None else shaped(shape)


ACTIONS = [*SQS_MODEL.operation_names, "NoSuchAction"]
requests = st.sampled_from(ACTIONS).flatmap(
    lambda action: st.tuples(st.just(action), request_strategy(action))
)


def without_long_poll(action: str, params: Any) -> Any:
    """A valid wait would only make the test slow."""
    if action == "ReceiveMessage" and isinstance(params, dict):
        return {**params, "WaitTimeSeconds": 0}
    return params


def post(connection: http.client.HTTPConnection, action: str, body: bytes) -> tuple[int, Any]:
    connection.request(
        "POST",
        "/",
        body=body,
        headers={"X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": "application/x-amz-json-1.0"},
    )
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def assert_well_formed(status: int, reply: Any) -> None:
    if status == 200:
        assert isinstance(reply, dict)
    else:
        assert 400 <= status < 500 or status == 500, status
        assert isinstance(reply.get("__type"), str)
        assert isinstance(reply.get("message"), str)


@pytest.fixture(scope="module")
def connection(emulator_endpoint) -> Iterator[http.client.HTTPConnection]:
    address = urlsplit(emulator_endpoint)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def fuzz_queues(emulator_endpoint) -> Any:
    sqs = sqs_client(emulator_endpoint)

    def create() -> None:  # again before each request: a generated DeleteQueue may have removed them
        sqs.create_queue(QueueName=STANDARD_QUEUE)
        sqs.create_queue(QueueName=FIFO_QUEUE, Attributes={"FifoQueue": "true"})

    return create


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(request=requests, raw=st.one_of(st.none(), st.binary(max_size=30)))
@example(request=("SendMessage", {}), raw=b"[" * 100_000)
@example(request=("ListQueues", {}), raw=b'{"MaxResults": 1e999}')
@example(
    request=(
        "SendMessageBatch",
        {"QueueUrl": QUEUE_URLS[0], "Entries": [{"Id": "a", "MessageBody": "\ud800"}]},
    ),
    raw=None,
)
def test_every_generated_request_gets_a_well_formed_reply(connection, fuzz_queues, request, raw):
    """GIVEN requests generated for every action (JSON bodies with wrong types, odd strings with
    lone surrogates, huge integers, nested junk, or bytes that are no JSON) WHEN posted one after
    another on one keep-alive connection THEN each gets 200 with a JSON object, or 4xx/500 with a
    JSON body carrying __type and message (a dropped connection fails the request)."""
    action, params = request
    fuzz_queues()
    body = json.dumps(without_long_poll(action, params)).encode() if raw is None else raw

    status, reply = post(connection, action, body)

    assert_well_formed(status, reply)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(request=requests)
def test_generated_requests_are_refused_before_anything_fails(request):
    """GIVEN the queue store in-process and a generated request WHEN handled THEN it returns a reply
    or raises a 400 SqsError: validation at the edge leaves nothing to the last-resort 500."""
    action, params = request
    store = QueueStore(":memory:")
    store.handle("CreateQueue", {"QueueName": STANDARD_QUEUE})
    store.handle("CreateQueue", {"QueueName": FIFO_QUEUE, "Attributes": {"FifoQueue": "true"}})
    try:
        outcome: Any = store.handle(action, without_long_poll(action, params))
    except SqsError as error:
        outcome = error
    finally:
        store.close()

    assert isinstance(outcome, dict) or outcome.status == 400


FIFO_SEND = {"QueueUrl": QUEUE_URLS[1], "MessageBody": "m", "MessageDeduplicationId": "d"}


@pytest.mark.parametrize(
    ("action", "body", "error_type"),
    [
        ("ListQueues", {"NextToken": "not-a-token"}, "InvalidParameterValue"),
        (
            "DeleteMessage",
            {"QueueUrl": QUEUE_URLS[0], "ReceiptHandle": "9" * 25 + ".t"},
            "ReceiptHandleIsInvalid",
        ),
        ("DeleteMessage", {"QueueUrl": QUEUE_URLS[0], "ReceiptHandle": "²³.t"}, "ReceiptHandleIsInvalid"),
        (
            "SendMessage",
            {
                "QueueUrl": QUEUE_URLS[0],
                "MessageBody": "m",
                "MessageAttributes": {"a": {"DataType": "String", "StringValue": "\ud800"}},
            },
            "InvalidMessageContents",
        ),
        ("SendMessage", {**FIFO_SEND, "MessageGroupId": "\ud800"}, "InvalidParameterValue"),
        (
            "CreateQueue",
            {
                "QueueName": "q",
                "Attributes": {"RedrivePolicy": '{"deadLetterTargetArn": 5, "maxReceiveCount": "1"}'},
            },
            "InvalidAttributeValue",
        ),
        (
            "CreateQueue",
            {
                "QueueName": "q",
                "Attributes": {
                    "RedrivePolicy": f'{{"deadLetterTargetArn": "{QUEUE_ARNS[0]}", "maxReceiveCount": 1e400}}'
                },
            },
            "InvalidAttributeValue",
        ),
        (
            "SendMessage",
            {"QueueUrl": QUEUE_URLS[0], "MessageBody": "m", "DelaySeconds": 10**30},
            "SerializationException",
        ),
        ("SendMessage", {"QueueUrl": [QUEUE_URLS[0]], "MessageBody": "m"}, "SerializationException"),
    ],
    ids=[
        "invalid-next-token",
        "receipt-handle-overflows-integer",
        "receipt-handle-non-ascii-digits",
        "surrogate-in-attribute-value",
        "surrogate-in-group-id",
        "redrive-policy-arn-not-a-string",
        "redrive-policy-count-infinite",
        "huge-integer",
        "list-for-a-string",
    ],
)
def test_requests_that_crashed_the_emulator_get_their_error(
    connection, fuzz_queues, action, body, error_type
):
    """GIVEN a request that once dropped the connection with a traceback WHEN posted THEN a 400
    reply with SQS's error type."""
    fuzz_queues()

    status, reply = post(connection, action, json.dumps(body).encode())

    assert (status, reply["__type"]) == (400, f"com.amazonaws.sqs#{error_type}")


@pytest.fixture
def server_on_damaged_database(tmp_path: Path) -> Iterator[tuple[SqsServer, str]]:
    """A server whose database holds a queue with a MaximumMessageSize no code can read, as if
    another tool had written it."""
    database = str(tmp_path / "sqs.sqlite3")
    store = QueueStore(database)
    store.handle("CreateQueue", {"QueueName": "damaged"})
    store.close()
    with sqlite3.connect(database) as db:
        db.execute("""UPDATE queues SET attributes = '{"MaximumMessageSize": "big"}'""")
    db.close()
    server = SqsServer("127.0.0.1", 0, database)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"{server.endpoint}/000000000000/damaged"
    server.shutdown()
    server.server_close()
    thread.join()


def test_unexpected_failure_answers_internal_error_and_logs_it(server_on_damaged_database, caplog):
    """GIVEN a queue whose stored attributes break the code WHEN a message is sent to it THEN the
    reply is 500 InternalError in the JSON protocol, the traceback is logged, and the connection
    serves the next request."""
    server, queue_url = server_on_damaged_database
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)

    with caplog.at_level(logging.ERROR, logger="local.sqs.server"):
        status, reply = post(
            connection, "SendMessage", json.dumps({"QueueUrl": queue_url, "MessageBody": "m"}).encode()
        )
    next_status, _ = post(connection, "ListQueues", b"{}")
    connection.close()

    assert (status, reply["__type"]) == (500, "com.amazonaws.sqs#InternalError")
    assert any(record.exc_info and record.exc_info[0] is ValueError for record in caplog.records)
    assert next_status == 200


def test_tags_are_not_served_and_say_so(emulator_sqs, queue_name):
    """docs/local-sqs.md, "Knowingly not supported": tags are not served; the SQS actions the
    emulator does not serve answer 400 UnsupportedOperation.

    GIVEN a queue WHEN it is tagged THEN UnsupportedOperation, with the action named."""
    queue_url = emulator_sqs.create_queue(QueueName=queue_name)["QueueUrl"]

    with pytest.raises(ClientError) as excinfo:
        emulator_sqs.tag_queue(QueueUrl=queue_url, Tags={"team": "ingest"})

    error = excinfo.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.UnsupportedOperation"
    assert "TagQueue" in error["Message"]


def test_query_protocol_request_is_answered_in_json(connection, queue_name):
    """docs/local-sqs.md, "Knowingly not supported": the Query (XML) protocol of older SDKs.

    GIVEN a Query-protocol request (form-encoded, no X-Amz-Target) WHEN posted THEN 400
    InvalidAction in the JSON protocol, naming the protocol that is served."""
    connection.request(
        "POST",
        "/",
        body=f"Action=CreateQueue&QueueName={queue_name}&Version=2012-11-05",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    reply = json.loads(response.read())

    assert (response.status, reply["__type"]) == (400, "com.amazonaws.sqs#InvalidAction")
    assert "X-Amz-Target" in reply["message"]


def test_request_without_a_valid_content_length_is_answered_then_closed(emulator_endpoint):
    """GIVEN a POST whose Content-Length is not a number WHEN sent THEN a 400 JSON reply comes back
    and the server closes the connection (the body cannot be told from a next request)."""
    address = urlsplit(emulator_endpoint)
    with socket.create_connection((address.hostname, address.port), timeout=10) as raw:
        raw.sendall(
            b"POST / HTTP/1.1\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: many\r\n\r\n{}"
        )
        received = b""
        while chunk := raw.recv(65536):  # ends when the server closes
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in head
    assert json.loads(body)["__type"] == "com.amazonaws.sqs#SerializationException"
