"""The reader handler against a real MariaDB: what the consumer committed, and clear 4xx otherwise."""

from __future__ import annotations

import json

import pytest

from local.testdata import api_event, queue_message, sqs_event, sqs_record
from tests.conftest import load_handler

T0 = 1_764_000_000_000_000


@pytest.fixture
def handlers(fresh_database, queues, monkeypatch, lambda_context):
    consumer = load_handler("consumer", monkeypatch, fresh_database.env | queues.env)
    reader = load_handler("reader", monkeypatch, fresh_database.env)
    return consumer, reader


def get(reader, context, path, resource, parameters):
    response = reader.handler(api_event("GET", path, resource=resource, path_parameters=parameters), context)
    return response["statusCode"], json.loads(response["body"])


def test_a_committed_customer_and_record_are_found(handlers, lambda_context):
    # GIVEN a record the consumer committed
    consumer, reader = handlers
    message = queue_message("zoe", T0 + 123_456, "r-zoe-1", name="Zoe", email="zoe@example.com")
    consumer.handler(sqs_event(sqs_record(message)), lambda_context)

    # WHEN the customer and the record are read
    customer_status, customer = get(
        reader, lambda_context, "/customers/zoe", "/customers/{customer_id}", {"customer_id": "zoe"}
    )
    record_status, record = get(
        reader, lambda_context, "/records/r-zoe-1", "/records/{request_id}", {"request_id": "r-zoe-1"}
    )

    # THEN both are there, with the producer's time (to the microsecond, UTC) and the commit time
    assert customer_status == 200
    assert customer["payload"] == message["payload"]
    assert customer["request_id"] == "r-zoe-1"
    assert customer["accepted_at"] == "2025-11-24T16:00:00.123456Z"
    assert record_status == 200
    assert record["status"] == "committed"
    assert record["customer_id"] == "zoe"
    assert record["committed_at"] >= record["accepted_at"]


@pytest.mark.parametrize(
    ("path", "resource", "parameters", "code", "message"),
    [
        (
            "/customers/nobody",
            "/customers/{customer_id}",
            {"customer_id": "nobody"},
            "customer_not_found",
            None,
        ),
        (
            "/records/r-unknown",
            "/records/{request_id}",
            {"request_id": "r-unknown"},
            "record_not_found",
            "not yet committed or unknown",
        ),
    ],
)
def test_unknown_ids_get_404(handlers, lambda_context, path, resource, parameters, code, message):
    _, reader = handlers
    status, body = get(reader, lambda_context, path, resource, parameters)
    assert status == 404
    assert body["error"]["code"] == code
    if message:
        assert body["error"]["message"] == message


def test_a_malformed_id_gets_400_naming_it(handlers, lambda_context):
    _, reader = handlers
    status, body = get(
        reader, lambda_context, "/customers/a;b", "/customers/{customer_id}", {"customer_id": "a;b"}
    )
    assert status == 400
    assert body["error"]["field"] == "customer_id"


def test_with_the_database_unreachable_reads_get_503(fresh_database, monkeypatch, lambda_context):
    from local.servers import free_port

    reader = load_handler(
        "reader", monkeypatch, {**fresh_database.env, "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "1"}
    )
    status, body = get(
        reader, lambda_context, "/customers/zoe", "/customers/{customer_id}", {"customer_id": "zoe"}
    )
    assert status == 503
    assert body["error"]["code"] == "database_unavailable"
