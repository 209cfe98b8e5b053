"""X-Ray never receives customer data: every function runs with tracing active, as in Lambda, and what
its recorder would send to the daemon is searched for every value a customer sent.

Powertools' Tracer records a traced function's return value and exception as X-Ray metadata unless told
not to; the functions turn both off in code. The recorder here is the real one (aws_xray_sdk's), with an
emitter that keeps the serialized segments and subsegments instead of sending them: the handlers'
own subsegments and X-Ray's botocore ones (SQS). pymysql is not traced: X-Ray records an exception
leaving a traced statement with its message, and a database's message can quote a row's values (a
refusal below does). The database is a real MariaDB, the queues moto's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import aws_xray_sdk
import pytest
from aws_lambda_powertools import Tracer
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.context import Context
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.models.entity import Entity
from moto import mock_aws

from local.lambda_runtime import LambdaContext
from local.template import REPO_ROOT
from local.testdata import api_event, queue_message, sqs_event, sqs_record
from tests.conftest import load_handler
from tests.migrator import custom_resource_event, load_migrator, migrator_env
from tests.moto_stack import MotoStack

T0 = 1_764_000_000_000_000  # microseconds
ATTRIBUTES = {"loyalty_tier": "obsidian-heron", "referral_code": "ZX-77-QUILL", "visits": 914273}
CUSTOMER = {
    "customer_id": "cust-quillon-4821",
    "name": "Philippa Quillon-Ashgrove",
    "email": "philippa.quillon@example.org",
    "phone": "+44 20 7946 0321",
    "address": "17 Marrowbone Lane, Lower Fennick",
    "attributes": ATTRIBUTES,
}
# A record that reached the queue without the API (a redrive of old data, a bug): nested deeper than
# the database's JSON allows, so the database refuses it.
REFUSED = {
    "name": "Bartholomew Drisk-Wanley",
    "email": "b.drisk-wanley@example.net",
    "phone": "+1 415 555 0187",
    "address": "88 Cinderfold Road, Upper Brackwater",
}
# A record the database refuses with a message that quotes it, as "Duplicate entry '...'" or
# "Incorrect string value: '...'" do: a trigger stands in for those refusals.
QUOTED = {"name": "Wilhelmina Sparrowgate-Oddny", "email": "w.sparrowgate@example.com"}
QUOTING_TRIGGER = """
CREATE TRIGGER refuse_quoting BEFORE INSERT ON customer_records FOR EACH ROW
IF NEW.customer_id = 'cust-sparrowgate-5' THEN
    SET @refusal = CONCAT(
        'refused ', JSON_VALUE(NEW.payload, '$.name'), ' <', JSON_VALUE(NEW.payload, '$.email'), '>'
    );
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @refusal;
END IF
"""


class KeptEntities:
    """An X-Ray emitter that keeps each segment and subsegment as it would go to the daemon."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_entity(self, entity: Entity) -> None:
        self.sent.append(entity.serialize())

    def set_daemon_address(self, address: str | None) -> None:
        pass

    def documents(self) -> list[dict[str, Any]]:
        """Every segment and subsegment sent, nested ones included."""
        found: list[dict[str, Any]] = []
        pending = [json.loads(text) for text in self.sent]
        while pending:
            entity = pending.pop()
            found.append(entity)
            pending.extend(entity.get("subsegments", []))
        return found


@pytest.fixture
def xray(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeptEntities]:
    """Tracing active as in a Lambda function with Tracing: Active, sampled, kept in memory; the
    test's own AWS calls, outside any invocation's segment, are not traced."""
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(REPO_ROOT / "functions"))  # Powertools traces in Lambda only
    Tracer._reset_config()  # the other tests' disabled Tracer is remembered by the class
    kept = KeptEntities()
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(emitter=kept, context=Context(), sampling=False, context_missing="IGNORE_ERROR")
    yield kept
    # The rest of the session runs untraced again, as it did before.
    Tracer._reset_config()
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(False)
    xray_recorder.configure(emitter=UDPEmitter(), context=Context())


def traced[T](invoke: Callable[[], T]) -> T:
    """One invocation inside its own segment, as Lambda opens one (its facade) for each."""
    xray_recorder.begin_segment("invocation")
    try:
        return invoke()
    finally:
        xray_recorder.end_segment()


def customer_values() -> list[str]:
    """Every value a customer sent, and the refused record's, as text."""
    values = [str(value) for value in [*CUSTOMER.values(), *ATTRIBUTES.values()] if value is not ATTRIBUTES]
    return values + list(REFUSED.values()) + list(QUOTED.values())


def appearances(values: list[str], kept: KeptEntities) -> list[str]:
    """The values found in what X-Ray would receive, as sent or as JSON escapes them."""
    texts = "\n".join(kept.sent)
    return [value for value in values if value in texts or json.dumps(value)[1:-1] in texts]


def run_every_function(
    fresh_database: Any, queues: Any, monkeypatch: pytest.MonkeyPatch, response_url: Any
) -> dict[str, Any]:
    """Each function through its handler, on its success and its error paths; their replies by name."""
    context = LambdaContext(function_name="traced")
    replies: dict[str, Any] = {}
    producer = load_handler("producer", monkeypatch, queues.env)
    consumer = load_handler("consumer", monkeypatch, fresh_database.env | queues.env)
    reader = load_handler("reader", monkeypatch, fresh_database.env)

    # The producer accepts the customer's body; an invalid one is refused.
    replies["accepted"] = traced(lambda: producer.handler(api_event("POST", "/customers", CUSTOMER), context))
    invalid = {**CUSTOMER, "email": f"not an e-mail: {CUSTOMER['name']}"}
    replies["refused"] = traced(lambda: producer.handler(api_event("POST", "/customers", invalid), context))

    # The consumer stores what the producer queued; the database refuses the other record.
    (message,) = queues.messages(queues.queue_url)
    deep: dict[str, Any] = {"address": REFUSED["address"]}
    for _ in range(40):
        deep = {"d": deep}
    contact = {key: value for key, value in REFUSED.items() if key != "address"}
    refused = queue_message("cust-drisk-1177", T0, "r-drisk-1", **contact, attributes=deep)
    quoted = queue_message("cust-sparrowgate-5", T0, "r-sparrowgate-1", **QUOTED)
    with fresh_database.server.connect(fresh_database.name) as connection, connection.cursor() as cursor:
        cursor.execute(QUOTING_TRIGGER)
    event = sqs_event(sqs_record(json.loads(message["Body"])), sqs_record(refused), sqs_record(quoted))
    replies["stored"] = traced(lambda: consumer.handler(event, context))

    # The reader answers the profile and the record; an unknown customer is not found.
    request_id = json.loads(replies["accepted"]["body"])["request_id"]
    customer_id = str(CUSTOMER["customer_id"])
    for name, path, resource, parameters in (
        ("profile", f"/customers/{customer_id}", "/customers/{customer_id}", {"customer_id": customer_id}),
        ("record", f"/records/{request_id}", "/records/{request_id}", {"request_id": request_id}),
        ("unknown", "/customers/cust-nobody", "/customers/{customer_id}", {"customer_id": "cust-nobody"}),
    ):
        request = api_event("GET", path, resource=resource, path_parameters=parameters)
        replies[name] = traced(lambda request=request: reader.handler(request, context))

    # The migrator applies the schema to the same database.
    env = migrator_env(fresh_database.server, fresh_database.name, "ingest_app_test", "ingest_reader_test")
    migrator = load_migrator(monkeypatch, env)
    replies["migrated"] = traced(
        lambda: migrator.handler(custom_resource_event("Update", response_url[0]), context)
    )
    return replies


def test_no_customer_value_and_no_reply_reaches_x_ray(
    xray, fresh_database, queues, monkeypatch, response_url
):
    # GIVEN every function with tracing active
    # WHEN a customer's body is accepted, stored and read back, and each function meets an error
    replies = run_every_function(fresh_database, queues, monkeypatch, response_url)
    with mock_aws():
        stack = MotoStack()
        console = load_handler("console", monkeypatch, stack.console_env())
        for groups in ("console-operators", None):
            request = api_event("GET", "/console/api/status")
            request["requestContext"]["authorizer"]["claims"]["cognito:groups"] = groups
            replies[f"console {groups}"] = traced(
                lambda request=request: console.handler(request, LambdaContext("c"))
            )

    # THEN each path ran as meant (the values were really in the replies and the database)
    assert replies["accepted"]["statusCode"] == 202
    assert replies["refused"]["statusCode"] == 400
    assert len(replies["stored"]["batchItemFailures"]) == 2
    assert json.loads(replies["profile"]["body"])["payload"] == CUSTOMER
    assert replies["record"]["statusCode"] == 200
    assert replies["unknown"]["statusCode"] == 404
    assert replies["migrated"]["Status"] == "SUCCESS"
    assert replies["console console-operators"]["statusCode"] == 200
    assert replies["console None"]["statusCode"] == 403
    # AND X-Ray received the functions' subsegments and the SQS calls'
    documents = xray.documents()
    names = {document["name"] for document in documents}
    assert {
        "## handler",
        "## functions.producer.app.post_customer",
        "## functions.reader.app.get_record",
    } <= names
    assert any(document.get("aws", {}).get("operation") == "SendMessage" for document in documents)
    # AND none of it holds a value the customer sent, nor a reply or an error as metadata
    assert appearances(customer_values(), xray) == []
    metadata = [
        key for document in documents for space in document.get("metadata", {}).values() for key in space
    ]
    assert [key for key in metadata if key.endswith((" response", " error"))] == []
