"""Every sample event in events/ fed to its handler, against moto's SQS and a real MariaDB.

These are the events users run with `sam local invoke`; this keeps them valid as the code changes. Each
event has its own test, named in CHECKED by the `checks` decorator when this module is imported, so the
coverage check below holds whichever tests run and in whatever order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import load_handler
from tests.migrator import load_migrator, migrator_env

if TYPE_CHECKING:
    from local.lambda_runtime import LambdaContext
    from local.servers import DatabaseEndpoint
    from tests.conftest import FreshDatabase
    from tests.integration.conftest import Queues

EVENTS = Path(__file__).resolve().parents[2] / "events"
OLDER_ADA = "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a60"  # cust-0001's first record in the sample batch
NEWER_ADA = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e62"  # cust-0001's second record in the sample batch
GRACE = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c21"  # cust-0002's record in the sample batch

CHECKED: dict[str, str] = {}  # sample event -> the test that feeds it to its handler


def checks[T: Callable[..., None]](name: str) -> Callable[[T], T]:
    """Marks the decorated test as the check of events/<name>."""

    def register(test: T) -> T:
        assert name not in CHECKED, f"{name} is checked twice"
        CHECKED[name] = test.__name__
        return test

    return register


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def reply(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def test_every_sample_event_has_a_check_of_its_own():
    assert {path.name for path in EVENTS.glob("*.json")} == set(CHECKED)


# --- producer ---------------------------------------------------------------------------------------


@pytest.fixture
def producer(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler("producer", monkeypatch, queues.env)


@checks("producer-valid-post.json")
def test_producer_valid_post_is_accepted_and_enqueued(producer, queues, lambda_context):
    # WHEN the valid post is handled
    status, body = reply(producer.handler(sample("producer-valid-post.json"), lambda_context))

    # THEN it is accepted, and its message waits in the queue under the customer's group
    assert (status, body["status"], body["customer_id"]) == (202, "accepted", "cust-0001")
    [message] = queues.messages(queues.queue_url)
    assert message["Attributes"]["MessageGroupId"] == "cust-0001"
    assert json.loads(message["Body"])["request_id"] == body["request_id"]


@checks("producer-invalid-post.json")
def test_producer_invalid_post_names_the_field_and_enqueues_nothing(producer, queues, lambda_context):
    # WHEN the post with an invalid e-mail address is handled
    status, body = reply(producer.handler(sample("producer-invalid-post.json"), lambda_context))

    # THEN it is refused naming the field, and nothing is queued
    assert (status, body["error"]["field"]) == (400, "email")
    assert queues.messages(queues.queue_url) == []


@checks("producer-malformed-json.json")
def test_producer_malformed_json_is_refused_and_enqueues_nothing(producer, queues, lambda_context):
    # WHEN the truncated body is handled
    status, body = reply(producer.handler(sample("producer-malformed-json.json"), lambda_context))

    # THEN it is refused as malformed, and nothing is queued
    assert (status, body["error"]["code"]) == (400, "malformed_json")
    assert queues.messages(queues.queue_url) == []


@checks("producer-idempotent-retry.json")
def test_producer_idempotent_retry_names_the_same_request_and_queues_it_once(
    producer, queues, lambda_context
):
    # WHEN the post with an Idempotency-Key is handled twice, as a client's retry
    first = reply(producer.handler(sample("producer-idempotent-retry.json"), lambda_context))
    second = reply(producer.handler(sample("producer-idempotent-retry.json"), lambda_context))

    # THEN both are accepted as the same request, and the queue holds it once
    assert first[0] == second[0] == 202
    assert first[1]["request_id"] == second[1]["request_id"]
    [message] = queues.messages(queues.queue_url)
    assert json.loads(message["Body"])["request_id"] == first[1]["request_id"]


# --- consumer and reader ----------------------------------------------------------------------------


@pytest.fixture
def consumer(fresh_database: FreshDatabase, queues: Queues, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler("consumer", monkeypatch, {**fresh_database.env, **queues.env})


@pytest.fixture
def stored_sample_batch(consumer: ModuleType, lambda_context: LambdaContext) -> ModuleType:
    """The sample batch already stored (what the reader events and the redelivery follow)."""
    assert consumer.handler(sample("consumer-batch-two-customers.json"), lambda_context) == {
        "batchItemFailures": []
    }
    return consumer


def ledger(fresh_database: FreshDatabase) -> list[tuple[Any, ...]]:
    return fresh_database.query("SELECT request_id, customer_id FROM customer_records ORDER BY request_id")


@checks("consumer-batch-two-customers.json")
def test_consumer_batch_of_two_customers_stores_every_record_and_the_newer_profile(
    consumer, fresh_database, lambda_context
):
    # WHEN the batch of two customers is handled
    response = consumer.handler(sample("consumer-batch-two-customers.json"), lambda_context)

    # THEN nothing failed, every record is stored once, and cust-0001's profile is its newer record
    assert response == {"batchItemFailures": []}
    assert ledger(fresh_database) == [
        (OLDER_ADA, "cust-0001"),
        (GRACE, "cust-0002"),
        (NEWER_ADA, "cust-0001"),
    ]
    assert fresh_database.query("SELECT customer_id, request_id FROM customers ORDER BY customer_id") == [
        ("cust-0001", NEWER_ADA),
        ("cust-0002", GRACE),
    ]


@checks("consumer-redelivered.json")
def test_consumer_redelivered_record_is_a_duplicate_that_succeeds(
    stored_sample_batch, fresh_database, lambda_context
):
    # GIVEN the sample batch is stored; WHEN its first record is delivered again
    response = stored_sample_batch.handler(sample("consumer-redelivered.json"), lambda_context)

    # THEN it succeeds (so SQS deletes it), and the ledger and the profile are unchanged
    assert response == {"batchItemFailures": []}
    assert ledger(fresh_database) == [
        (OLDER_ADA, "cust-0001"),
        (GRACE, "cust-0002"),
        (NEWER_ADA, "cust-0001"),
    ]
    assert fresh_database.query("SELECT request_id FROM customers WHERE customer_id = 'cust-0001'") == [
        (NEWER_ADA,)
    ]


@pytest.fixture
def reader(fresh_database: FreshDatabase, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_handler("reader", monkeypatch, fresh_database.env)


@checks("reader-get-customer-found.json")
def test_reader_finds_the_customer_with_its_newest_record(stored_sample_batch, reader, lambda_context):
    # GIVEN the sample batch is stored; WHEN cust-0001 is read
    status, customer = reply(reader.handler(sample("reader-get-customer-found.json"), lambda_context))

    # THEN the profile is its newer record
    assert (status, customer["customer_id"], customer["request_id"]) == (200, "cust-0001", NEWER_ADA)


@checks("reader-get-record-found.json")
def test_reader_finds_a_committed_record(stored_sample_batch, reader, lambda_context):
    # GIVEN the sample batch is stored; WHEN its first record is read
    status, record = reply(reader.handler(sample("reader-get-record-found.json"), lambda_context))

    # THEN it is committed, with its commit time
    assert (status, record["request_id"], record["status"]) == (200, OLDER_ADA, "committed")
    assert record["committed_at"]


@checks("reader-get-customer-not-found.json")
def test_reader_answers_404_for_an_unknown_customer(reader, lambda_context):
    status, missing = reply(reader.handler(sample("reader-get-customer-not-found.json"), lambda_context))
    assert (status, missing["error"]["code"]) == (404, "customer_not_found")


@checks("reader-get-record-not-found.json")
def test_reader_answers_404_for_an_unknown_record(reader, lambda_context):
    status, missing = reply(reader.handler(sample("reader-get-record-not-found.json"), lambda_context))
    assert (status, missing["error"]["message"]) == (404, "not yet committed or unknown")


# --- migrator ---------------------------------------------------------------------------------------


@pytest.fixture
def migrator(
    database_server: DatabaseEndpoint,
    response_url: tuple[str, list[dict[str, Any]]],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Callable[[str], dict[str, Any]], str, list[dict[str, Any]]]]:
    """The migrator on a database and users of its own; yields (invoke with a sample event, database,
    the replies CloudFormation's pre-signed URL received)."""
    url, received = response_url
    suffix = uuid.uuid4().hex[:8]
    database, app_user, reader_user = f"sample_{suffix}", f"app_{suffix}", f"reader_{suffix}"
    handler = load_migrator(monkeypatch, migrator_env(database_server, database, app_user, reader_user))

    def invoke(name: str) -> dict[str, Any]:
        return handler.handler({**sample(name), "ResponseURL": url}, lambda_context)

    try:
        yield invoke, database, received
    finally:
        with database_server.connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cursor.execute(f"DROP USER IF EXISTS '{app_user}'@'%'")
            cursor.execute(f"DROP USER IF EXISTS '{reader_user}'@'%'")


def tables_of(database_server: DatabaseEndpoint, database: str) -> list[str]:
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,)
        )
        return sorted(row[0] for row in cursor.fetchall())


@checks("migrator-create.json")
def test_migrator_create_applies_the_schema_and_answers_success(migrator, database_server):
    invoke, database, received = migrator
    # WHEN the Create request is handled
    invoke("migrator-create.json")
    # THEN CloudFormation hears SUCCESS and the tables exist
    assert [answer["Status"] for answer in received] == ["SUCCESS"]
    assert tables_of(database_server, database) == ["customer_records", "customers"]


@checks("migrator-update.json")
def test_migrator_update_reruns_the_migration_and_keeps_the_data(migrator, database_server):
    invoke, database, received = migrator
    # GIVEN a created schema holding a record
    invoke("migrator-create.json")
    with database_server.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customer_records (request_id, customer_id, payload, accepted_at) "
            "VALUES ('r-1', 'c-1', '{}', '2024-11-23 10:00:00')"
        )
    # WHEN the Update request (a new layer version) is handled
    invoke("migrator-update.json")
    # THEN CloudFormation hears SUCCESS both times and the record is still there
    assert [answer["Status"] for answer in received] == ["SUCCESS", "SUCCESS"]
    with database_server.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT request_id FROM customer_records")
        assert cursor.fetchall() == (("r-1",),)


@checks("migrator-delete.json")
def test_migrator_delete_answers_success_and_keeps_the_tables(migrator, database_server):
    invoke, database, received = migrator
    # GIVEN a created schema
    invoke("migrator-create.json")
    # WHEN the Delete request is handled
    invoke("migrator-delete.json")
    # THEN CloudFormation hears SUCCESS, and the tables stay (the cluster's deletion policy decides)
    assert [answer["Status"] for answer in received] == ["SUCCESS", "SUCCESS"]
    assert tables_of(database_server, database) == ["customer_records", "customers"]
