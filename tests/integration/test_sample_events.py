"""Every sample event in events/ fed to its handler, against moto's SQS and a real MariaDB.

These are the events users run with `sam local invoke`; this keeps them valid as the code changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.conftest import load_handler

EVENTS = Path(__file__).resolve().parents[2] / "events"
COVERED: set[str] = set()


def event(name: str) -> dict:
    COVERED.add(name)
    return json.loads((EVENTS / name).read_text())


def reply(response: dict) -> tuple[int, dict]:
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def producer(monkeypatch):
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="customer-ingest.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        yield load_handler("producer", monkeypatch, {"QUEUE_URL": url}), sqs, url


def test_producer_events(producer, lambda_context):
    handler, sqs, url = producer
    status, body = reply(handler.handler(event("producer-valid-post.json"), lambda_context))
    assert status == 202
    assert body["status"] == "accepted"

    status, body = reply(handler.handler(event("producer-invalid-post.json"), lambda_context))
    assert (status, body["error"]["field"]) == (400, "email")

    status, body = reply(handler.handler(event("producer-malformed-json.json"), lambda_context))
    assert (status, body["error"]["code"]) == (400, "malformed_json")

    retry = event("producer-idempotent-retry.json")
    first = reply(handler.handler(retry, lambda_context))
    second = reply(handler.handler(retry, lambda_context))
    assert first[0] == second[0] == 202
    assert first[1]["request_id"] == second[1]["request_id"]

    # the valid post and the retried one (deduplicated by SQS): two messages
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "2"


def test_consumer_and_reader_events(test_database, consumer_queues, monkeypatch, lambda_context):
    consumer = load_handler("consumer", monkeypatch, test_database.env | consumer_queues.env)
    reader = load_handler("reader", monkeypatch, test_database.env)

    assert consumer.handler(event("consumer-batch-two-customers.json"), lambda_context) == {
        "batchItemFailures": []
    }
    assert consumer.handler(event("consumer-redelivered.json"), lambda_context) == {"batchItemFailures": []}
    assert test_database.query("SELECT COUNT(*) FROM customer_records") == [(3,)]

    status, customer = reply(reader.handler(event("reader-get-customer-found.json"), lambda_context))
    assert status == 200
    assert customer["request_id"] == "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e62"  # the newer record
    status, record = reply(reader.handler(event("reader-get-record-found.json"), lambda_context))
    assert (status, record["status"]) == (200, "committed")
    assert reply(reader.handler(event("reader-get-customer-not-found.json"), lambda_context))[0] == 404
    status, missing = reply(reader.handler(event("reader-get-record-not-found.json"), lambda_context))
    assert (status, missing["error"]["message"]) == (404, "not yet committed or unknown")


def test_migrator_events(database_server, response_url, monkeypatch, lambda_context):
    url, received = response_url
    env = {
        "DB_HOST": database_server.host,
        "DB_PORT": str(database_server.port),
        "DB_NAME": "sample_events",
        "DB_USER": database_server.user,
        "DB_PASSWORD": database_server.password,
        "DB_AUTH": "password",
        "DB_TLS": "off",
        "APP_DB_USER": "ingest_app_events",
        "READER_DB_USER": "ingest_reader_events",
    }
    migrator = load_handler("migrator", monkeypatch, env)
    # MariaDB lacks Aurora's AWSAuthenticationPlugin; a built-in plugin without a password stands in.
    monkeypatch.setattr(migrator, "APP_USER_AUTHENTICATION", "IDENTIFIED VIA unix_socket")
    try:
        for name in ("migrator-create.json", "migrator-update.json", "migrator-delete.json"):
            migrator.handler({**event(name), "ResponseURL": url}, lambda_context)
    finally:
        with database_server.connect() as connection, connection.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS sample_events")
            cursor.execute("DROP USER IF EXISTS 'ingest_app_events'@'%'")
            cursor.execute("DROP USER IF EXISTS 'ingest_reader_events'@'%'")
    assert [answer["Status"] for answer in received] == ["SUCCESS"] * 3


def test_every_sample_event_is_fed_to_a_handler():
    # Runs last in this module (pytest keeps file order): the tests above recorded what they used.
    assert {path.name for path in EVENTS.glob("*.json")} == COVERED
