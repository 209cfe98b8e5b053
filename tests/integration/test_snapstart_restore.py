"""SnapStart restore hooks of the producer and the reader, run as Lambda's runtime runs them.

The hooks are registered with `snapshot_restore_py`, the module Lambda's Python runtimes bring (the
same package is a dev dependency here); on a restore the runtime calls every registered hook in order.
Each test loads a handler as a new execution environment would, uses it, then restores: whatever init
made that restored environments must not share has to be made anew, and what must stay the same stays.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import snapshot_restore_py

from ingest.config import DatabaseSettings
from ingest.connection import iam_auth_token
from local.testdata import api_event
from tests.conftest import load_handler

CUSTOMER = {"customer_id": "cust-snap", "name": "Grace Hopper", "email": "grace@example.com"}


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    """An empty hook registry, as in a new execution environment's runtime."""
    registry = snapshot_restore_py.get_after_restore()
    saved = list(registry)
    registry.clear()
    yield
    registry[:] = saved


def restore() -> None:
    """What the runtime does once it has resumed an environment from the snapshot."""
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)


def draws_after_two_restores() -> tuple[float, float]:
    """The first `random` draw of two environments restored from one snapshot (the same state of `random`)."""
    snapshot = random.getstate()
    restore()
    first = random.random()
    random.setstate(snapshot)
    restore()
    second = random.random()
    return first, second


def access_key_of_next_request(client: Any) -> str:
    """The access key id the client signs its next request with (from its SigV4 Authorization header)."""
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        seen.append(request.headers["Authorization"].decode().split("Credential=")[1].split("/")[0])

    client.meta.events.register("before-send", record)
    client.list_queues()
    return seen[0]


@pytest.fixture
def producer(queues, monkeypatch):
    return load_handler("producer", monkeypatch, queues.env)


def post(producer: Any, context: Any, idempotency_key: str) -> dict[str, Any]:
    event = api_event("POST", "/customers", CUSTOMER, {"Idempotency-Key": idempotency_key})
    response = producer.handler(event, context)
    assert response["statusCode"] == 202, response
    return dict(json.loads(response["body"]))


def test_the_producer_registers_its_hook_with_the_runtime(producer):
    # GIVEN a loaded producer THEN its after-restore hook is what the runtime will call
    assert [hook for hook, _, _ in snapshot_restore_py.get_after_restore()] == [producer.after_restore]


def test_a_restored_producer_signs_with_the_credentials_it_is_given_after_the_restore(
    producer, queues, monkeypatch, lambda_context
):
    # GIVEN a producer that has sent a message with the credentials of its init
    post(producer, lambda_context, "before-restore")
    client_of_init = producer.producer.sqs
    assert access_key_of_next_request(client_of_init) != "ASIARESTOREDENVIRON1"
    # WHEN the environment is restored with credentials of its own
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIARESTOREDENVIRON1")
    restore()
    # THEN the producer has a client of its own that signs with them, and still enqueues
    assert producer.producer.sqs is not client_of_init
    assert access_key_of_next_request(producer.producer.sqs) == "ASIARESTOREDENVIRON1"
    # AND the service model it signs with is the one parsed at init, from the snapshot, not parsed again
    assert producer.producer.sqs.meta.service_model._service_description is (
        client_of_init.meta.service_model._service_description
    )
    post(producer, lambda_context, "after-restore")
    assert len(queues.messages(queues.queue_url)) == 2


def test_a_retry_after_a_restore_still_names_the_same_request(producer, queues, lambda_context):
    # GIVEN a request accepted before the restore
    before = post(producer, lambda_context, "retry-me")
    # WHEN its client retries it with the same key in a restored environment
    restore()
    after = post(producer, lambda_context, "retry-me")
    # THEN it is the same request (idempotency does not depend on which environment answers)
    assert after["request_id"] == before["request_id"]
    messages = queues.messages(queues.queue_url)
    assert len(messages) == 1  # SQS deduplicated the retry


def test_restored_producers_do_not_share_the_state_of_random(producer):
    # GIVEN two environments restored from one snapshot WHEN each draws a random number
    first, second = draws_after_two_restores()
    # THEN the draws differ: each reseeded `random` from the operating system's entropy
    assert first != second


@pytest.fixture
def reader(fresh_database, monkeypatch):
    return load_handler("reader", monkeypatch, fresh_database.env)


def read_missing_customer(reader: Any, context: Any) -> None:
    path_parameters = {"customer_id": "nobody"}
    event = api_event(
        "GET", "/customers/nobody", resource="/customers/{customer_id}", path_parameters=path_parameters
    )
    assert reader.handler(event, context)["statusCode"] == 404


def connection_id(reader: Any) -> int:
    with reader.reader.database.connection().cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


def test_a_restored_reader_opens_a_connection_of_its_own(reader, lambda_context):
    # GIVEN a reader that has answered a read over its connection
    read_missing_customer(reader, lambda_context)
    connection_before = reader.reader.database.connection()
    id_before = connection_id(reader)
    # WHEN the environment is restored
    restore()
    # THEN the connection of the snapshot is closed, the next read opens a new one, and reads work
    assert not connection_before.open
    read_missing_customer(reader, lambda_context)
    assert connection_id(reader) != id_before


def test_a_restored_reader_signs_database_logins_with_the_credentials_given_after_the_restore(
    reader, monkeypatch
):
    # GIVEN an IAM database login signed with the credentials of the init
    login = {
        "DB_HOST": "proxy.example",
        "DB_NAME": "ingest",
        "DB_USER": "ingest_reader",
        "AWS_REGION": "us-east-1",
    }
    settings = DatabaseSettings.from_env(login)
    assert "X-Amz-Credential=ASIARESTOREDENVIRON2%2F" not in iam_auth_token(settings)
    # WHEN the environment is restored with credentials of its own
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIARESTOREDENVIRON2")
    restore()
    # THEN the next login is signed with them
    assert "X-Amz-Credential=ASIARESTOREDENVIRON2%2F" in iam_auth_token(settings)


def test_restored_readers_do_not_share_the_state_of_random(reader):
    first, second = draws_after_two_restores()
    assert first != second
