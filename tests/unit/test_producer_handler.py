"""The producer handler with moto's SQS: promises 2 and 4 of the README."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from ingest.models import MAX_BODY_BYTES
from local.testdata import api_event
from tests.conftest import load_handler

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


def drain(sqs, queue_url) -> list[dict]:
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages"):
        messages.extend(batch)
    return messages


def test_valid_post_is_enqueued_then_answered_202(producer, sqs, queue_url, lambda_context):
    # WHEN a valid customer is posted
    status, body, _ = post(producer, lambda_context, VALID)

    # THEN the reply is 202 with the request id
    assert status == 202
    assert body["status"] == "accepted"
    assert body["customer_id"] == "cust-001"
    # AND exactly one message is in the queue: grouped by customer, deduplicated by request id
    [message] = drain(sqs, queue_url)
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
    assert len(drain(sqs, queue_url)) == 1


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
    assert len(drain(sqs, queue_url)) == 2


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
    assert drain(sqs, queue_url) == []


def test_wrong_content_type_gets_415(producer, sqs, queue_url, lambda_context):
    status, reply, _ = post(producer, lambda_context, VALID, {"Content-Type": "text/plain"})
    assert status == 415
    assert reply["error"]["field"] == "Content-Type"
    assert drain(sqs, queue_url) == []


def test_oversize_body_gets_413(producer, sqs, queue_url, lambda_context):
    body = json.dumps({**VALID, "address": "x" * MAX_BODY_BYTES})
    status, reply, _ = post(producer, lambda_context, body)
    assert status == 413
    assert reply["error"]["code"] == "body_too_large"
    assert drain(sqs, queue_url) == []


def test_invalid_idempotency_key_gets_400(producer, sqs, queue_url, lambda_context):
    status, reply, _ = post(producer, lambda_context, VALID, {"Idempotency-Key": "has spaces and ;"})
    assert status == 400
    assert reply["error"]["field"] == "Idempotency-Key"
    assert drain(sqs, queue_url) == []


def test_base64_body_is_accepted(producer, sqs, queue_url, lambda_context):
    status, _, _ = post(producer, lambda_context, VALID, base64_body=True)
    assert status == 202
    assert json.loads(drain(sqs, queue_url)[0]["Body"])["payload"] == VALID


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
    assert len(drain(sqs, queue_url)) == 2


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
