"""The producer handler with moto's SQS: promises 2 and 4 of the README."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from ingest.models import MAX_BODY_BYTES
from local.testdata import api_event
from tests.conftest import load_handler, received_once

VALID = {
    "customer_id": "cust-001",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+44 20 7946 0958",
    "address": "12 St James's Square, London",
    "attributes": {"tier": "gold", "newsletter": True},
}


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queue_url(sqs):
    return sqs.create_queue(
        QueueName="customer-ingest.fifo",
        Attributes={
            "FifoQueue": "true",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        },
    )["QueueUrl"]


@pytest.fixture
def producer(queue_url, monkeypatch):
    return load_handler("producer", monkeypatch, {"QUEUE_URL": queue_url})


def post(producer, context, body, headers=None, **kwargs):
    response = producer.handler(api_event("POST", "/customers", body, headers, **kwargs), context)
    return response["statusCode"], json.loads(response["body"]), response


def test_valid_post_is_enqueued_then_answered_202(producer, sqs, queue_url, lambda_context):
    # WHEN a valid customer is posted
    status, body, _ = post(producer, lambda_context, VALID)

    # THEN the reply is 202 with the request id
    assert status == 202
    assert body["status"] == "accepted"
    assert body["customer_id"] == "cust-001"
    # AND exactly one message is in the queue: grouped by customer, deduplicated by request id
    [message] = received_once(sqs, queue_url)
    assert message["Attributes"]["MessageGroupId"] == "cust-001"
    assert message["Attributes"]["MessageDeduplicationId"] == body["request_id"]
    sent = json.loads(message["Body"])
    assert sent["request_id"] == body["request_id"]
    assert sent["payload"] == VALID
    assert sent["accepted_at"] > 1_700_000_000_000_000  # microseconds


def test_a_retry_with_the_same_idempotency_key_gets_the_same_request_id_and_one_message(
    producer, sqs, queue_url, lambda_context
):
    # GIVEN a request sent with an Idempotency-Key
    headers = {"Idempotency-Key": "order-7f3a"}
    _, first, _ = post(producer, lambda_context, VALID, headers)

    # WHEN the client retries it (lower-case header, as HTTP/2 clients send)
    status, second, _ = post(producer, lambda_context, VALID, {"idempotency-key": "order-7f3a"})

    # THEN the retry is answered with the same request_id, and the queue holds one message
    assert status == 202
    assert second["request_id"] == first["request_id"]
    assert len(received_once(sqs, queue_url)) == 1


def test_the_same_idempotency_key_from_another_caller_is_another_request(producer, lambda_context):
    # GIVEN two callers using the same key
    event_a = api_event("POST", "/customers", VALID, {"Idempotency-Key": "k1"})
    event_b = api_event("POST", "/customers", VALID, {"Idempotency-Key": "k1"})
    event_b["requestContext"]["authorizer"]["claims"]["sub"] = "user-2"

    # WHEN both post
    first = json.loads(producer.handler(event_a, lambda_context)["body"])
    second = json.loads(producer.handler(event_b, lambda_context)["body"])

    # THEN their requests stay apart
    assert first["request_id"] != second["request_id"]


def test_without_a_key_every_request_is_new(producer, sqs, queue_url, lambda_context):
    _, first, _ = post(producer, lambda_context, VALID)
    _, second, _ = post(producer, lambda_context, VALID)
    assert first["request_id"] != second["request_id"]
    assert len(received_once(sqs, queue_url)) == 2


def test_when_sqs_fails_the_answer_is_503_with_retry_after(monkeypatch, sqs, lambda_context):
    # GIVEN a producer whose queue does not exist (SQS rejects every send)
    producer = load_handler(
        "producer", monkeypatch, {"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/gone.fifo"}
    )

    # WHEN a valid customer is posted
    status, body, response = post(producer, lambda_context, VALID, {"Idempotency-Key": "k-503"})

    # THEN the client is told to retry, never that it was accepted
    assert status == 503
    assert body["error"]["code"] == "queue_unavailable"
    # (Powertools answers REST events with multiValueHeaders, which API Gateway accepts)
    assert int(response["multiValueHeaders"]["Retry-After"][0]) > 0


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({**VALID, "email": "not-an-email"}, "email", "validation_failed"),
        ({**VALID, "customer_id": "has space"}, "customer_id", "validation_failed"),
        ({**VALID, "customer_id": "x" * 65}, "customer_id", "validation_failed"),
        ({k: v for k, v in VALID.items() if k != "customer_id"}, "customer_id", "validation_failed"),
        ({**VALID, "unexpected": 1}, "unexpected", "validation_failed"),
        ({**VALID, "name": 42}, "name", "validation_failed"),
        ({**VALID, "attributes": {f"k{i}": i for i in range(51)}}, "attributes", "validation_failed"),
        ({**VALID, "attributes": {"blob": "x" * 17_000}}, "attributes", "validation_failed"),
        ({**VALID, "attributes": {"a": [[[[[[[[[1]]]]]]]]]}}, "attributes", "validation_failed"),
        ([VALID], "body", "validation_failed"),
        ("{not json", "body", "malformed_json"),
        (None, "body", "missing_body"),
    ],
    ids=[
        "bad-email",
        "bad-customer-id",
        "long-customer-id",
        "missing-customer-id",
        "unknown-field",
        "wrong-type",
        "too-many-attributes",
        "attributes-too-large",
        "attributes-too-deep",
        "array-body",
        "malformed-json",
        "no-body",
    ],
)
def test_bad_input_gets_400_naming_the_field_and_nothing_is_enqueued(
    producer, sqs, queue_url, lambda_context, body, field, code
):
    # WHEN an invalid body is posted
    status, reply, _ = post(producer, lambda_context, json.dumps(body) if isinstance(body, list) else body)

    # THEN 400 names the problem and the field, and the queue stays empty
    assert status == 400
    assert reply["error"]["code"] == code
    assert reply["error"]["field"] == field
    assert reply["error"]["message"]
    assert received_once(sqs, queue_url) == []


def test_wrong_content_type_gets_415(producer, sqs, queue_url, lambda_context):
    status, reply, _ = post(producer, lambda_context, VALID, {"Content-Type": "text/plain"})
    assert status == 415
    assert reply["error"]["field"] == "Content-Type"
    assert received_once(sqs, queue_url) == []


def test_oversize_body_gets_413(producer, sqs, queue_url, lambda_context):
    body = json.dumps({**VALID, "address": "x" * MAX_BODY_BYTES})
    status, reply, _ = post(producer, lambda_context, body)
    assert status == 413
    assert reply["error"]["code"] == "body_too_large"
    assert received_once(sqs, queue_url) == []


def test_invalid_idempotency_key_gets_400(producer, sqs, queue_url, lambda_context):
    status, reply, _ = post(producer, lambda_context, VALID, {"Idempotency-Key": "has spaces and ;"})
    assert status == 400
    assert reply["error"]["field"] == "Idempotency-Key"
    assert received_once(sqs, queue_url) == []


def test_base64_body_is_accepted(producer, sqs, queue_url, lambda_context):
    status, _, _ = post(producer, lambda_context, VALID, base64_body=True)
    assert status == 202
    assert json.loads(received_once(sqs, queue_url)[0]["Body"])["payload"] == VALID


def test_charset_parameter_in_content_type_is_fine(producer, lambda_context):
    status, _, _ = post(producer, lambda_context, VALID, {"Content-Type": "application/json; charset=utf-8"})
    assert status == 202


def test_a_key_reused_for_different_data_makes_a_new_request_instead_of_dropping_it(
    producer, sqs, queue_url, lambda_context
):
    # GIVEN a request sent with a key
    _, first, _ = post(producer, lambda_context, VALID, {"Idempotency-Key": "reused"})

    # WHEN the same key comes with the same data (attributes in another order), then with other data
    reordered = {**VALID, "attributes": dict(reversed(list(VALID["attributes"].items())))}
    _, retry, _ = post(producer, lambda_context, reordered, {"Idempotency-Key": "reused"})
    _, other, _ = post(
        producer, lambda_context, {**VALID, "name": "Someone Else"}, {"Idempotency-Key": "reused"}
    )

    # THEN the retry is the same request, and the other data is a request of its own, both enqueued
    assert retry["request_id"] == first["request_id"]
    assert other["request_id"] != first["request_id"]
    assert len(received_once(sqs, queue_url)) == 2


def test_an_assumed_role_keeps_its_keys_when_its_session_changes(producer, lambda_context):
    # GIVEN two calls of one IAM role from two sessions (credentials refreshed between them)
    events = []
    for session in ("botocore-session-1", "botocore-session-2"):
        event = api_event("POST", "/customers", VALID, {"Idempotency-Key": "k-role"})
        event["requestContext"]["authorizer"] = None
        event["requestContext"]["identity"]["userArn"] = (
            f"arn:aws:sts::123456789012:assumed-role/crm/{session}"
        )
        events.append(event)

    # WHEN both post with the same key
    first, second = (json.loads(producer.handler(event, lambda_context)["body"]) for event in events)

    # THEN it is one request
    assert first["request_id"] == second["request_id"]


def _attributes_text(value_text: str) -> str:
    return '{"customer_id": "c-1", "attributes": {"a": ' + value_text + "}}"


@pytest.mark.parametrize(
    ("text", "field", "code"),
    [
        ("[" * 5_000 + "]" * 5_000, "body", "validation_failed"),
        (_attributes_text("[" * 5_000 + "]" * 5_000), "attributes", "validation_failed"),
        (_attributes_text('{"b": ' * 3_000 + "1" + "}" * 3_000), "attributes", "validation_failed"),
        (_attributes_text("9" * 5_000), "attributes.a", "number_out_of_range"),
        (_attributes_text("-" + "9" * 5_000), "attributes.a", "number_out_of_range"),
        (_attributes_text(str(2**53)), "attributes.a", "number_out_of_range"),
        (_attributes_text("[1, 1e400]"), "attributes.a.1", "number_out_of_range"),
        (_attributes_text("-1e400"), "attributes.a", "number_out_of_range"),
        (_attributes_text("1e-400"), "attributes.a", "number_too_precise"),
        (_attributes_text("0e99999999999999999999"), "attributes.a", "number_out_of_range"),
        (_attributes_text("1e-99999999999999999999"), "attributes.a", "number_out_of_range"),
        (_attributes_text("0.1000000000000000000001"), "attributes.a", "number_too_precise"),
        (_attributes_text("NaN"), "attributes.a", "not_a_number"),
        (_attributes_text("Infinity"), "attributes.a", "not_a_number"),
        (_attributes_text("-Infinity"), "attributes.a", "not_a_number"),
        ('{"customer_id": "c-1", "customer_id": "c-2"}', "customer_id", "duplicate_key"),
        (_attributes_text('{"k": 1, "k": 1}'), "attributes.a.k", "duplicate_key"),
        ('{"customer_id": "c-1", "name": "\\uffff"}', "name", "unsupported_character"),
        ('{"customer_id": "c-1", "name": "\\ufffe"}', "name", "unsupported_character"),
        ('{"customer_id": "c-1", "name": "\\ud800"}', "name", "unsupported_character"),
        ('{"customer_id": "c-1", "address": "a\\udc00b"}', "address", "unsupported_character"),
        ('{"customer_id": "c-1", "name": "nul \\u0000"}', "name", "unsupported_character"),
        (_attributes_text('["ok", "\\u001b"]'), "attributes.a.1", "unsupported_character"),
        (
            '{"customer_id": "c-1", "attributes": {"\\uffff": 1}}',
            "attributes.\uffff",
            "unsupported_character",
        ),
    ],
    ids=[
        "deep-array-body",
        "deep-arrays-in-attributes",
        "deep-objects-in-attributes",
        "integer-beyond-the-digit-limit",
        "negative-integer-beyond-the-digit-limit",
        "integer-beyond-2**53-1",
        "float-overflow",
        "negative-float-overflow",
        "float-underflow",
        "zero-with-an-exponent-beyond-decimal's",
        "exponent-beyond-decimal's",
        "float-beyond-double-precision",
        "NaN",
        "Infinity",
        "-Infinity",
        "duplicate-top-level-key",
        "duplicate-nested-key",
        "U+FFFF",
        "U+FFFE",
        "lone-high-surrogate",
        "lone-low-surrogate",
        "control-character",
        "escape-character-in-a-list",
        "key-with-U+FFFF",
    ],
)
def test_a_body_that_could_not_be_stored_as_sent_gets_400_naming_the_field(
    producer, sqs, queue_url, lambda_context, text, field, code
):
    # GIVEN a body under the size limit that Python's parser would choke on, change, or SQS refuse
    # WHEN it is posted
    status, reply, _ = post(producer, lambda_context, text)

    # THEN 400 names the field and the problem, and nothing is enqueued
    assert (status, reply["error"]["code"], reply["error"]["field"]) == (400, code, field)
    assert reply["error"]["message"].startswith(f"{field}: ")
    assert received_once(sqs, queue_url) == []


@pytest.mark.parametrize(
    ("value_text", "stored"),
    [
        (str(2**53 - 1), 2**53 - 1),
        (str(-(2**53 - 1)), -(2**53 - 1)),
        ("1.50", 1.5),
        ("1e300", 1e300),
        ("-0.0", -0.0),
        ("5e-324", 5e-324),
        (
            '"tab\\tline\\nreturn\\r emoji \\ud83d\\ude00 \\ue000 \\ufffd"',
            "tab\tline\nreturn\r emoji 😀 \ue000 \ufffd",
        ),
    ],
    ids=[
        "max-safe-integer",
        "min-safe-integer",
        "trailing-zero",
        "large-float",
        "negative-zero",
        "smallest-subnormal",
        "allowed-characters",
    ],
)
def test_values_at_the_edge_of_what_is_accepted_are_enqueued_as_sent(
    producer, sqs, queue_url, lambda_context, value_text, stored
):
    # WHEN a value just inside the stated limits is posted
    status, _, _ = post(producer, lambda_context, _attributes_text(value_text))

    # THEN it is accepted and the queued payload holds the same value
    assert status == 202
    [message] = received_once(sqs, queue_url)
    assert json.loads(message["Body"])["payload"]["attributes"]["a"] == stored


def test_an_idempotency_key_with_a_trailing_newline_gets_400_naming_the_header(
    producer, sqs, queue_url, lambda_context
):
    # WHEN a key that is valid but for a final newline is sent
    status, reply, _ = post(producer, lambda_context, VALID, {"Idempotency-Key": "order-7f3a\n"})

    # THEN the whole key must match, and the error names the header
    assert (status, reply["error"]["field"]) == (400, "Idempotency-Key")
    assert received_once(sqs, queue_url) == []
