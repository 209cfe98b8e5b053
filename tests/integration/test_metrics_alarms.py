"""The metrics the handlers emit and what in template.yaml reads them: a renamed metric fails here.

Each handler runs through its entry point (functions/<name>/app.py handler) with the Powertools
environment template.yaml gives every function, over cases that make it emit each of its metrics; the
EMF lines Powertools Metrics prints to stdout are captured (stdout is redirected around each call only:
the handlers' loggers keep the stream they found at import, which must outlive this test). Then every
alarm on a custom metric must name a namespace, metric and dimension set the code emitted, and every
alarm on an AWS metric a metric AWS publishes, for a resource of this stack. The readers are gathered by
`metric_readers`: the dashboard (a later issue) adds its widgets there and gets the same check.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.template import Template
from tests.conftest import load_handler

if TYPE_CHECKING:
    from local.lambda_runtime import LambdaContext
    from tests.conftest import TestDatabase
    from tests.integration.conftest import Queues

TEMPLATE = Template()
EVENTS = Path(__file__).resolve().parents[2] / "events"

# Every custom metric the handlers emit. A new or renamed metric must be added here, and to the alarms
# or the dashboard that should read it.
EMITTED_METRICS = {
    "producer": {"Accepted", "Rejected", "QueueUnavailable"},
    "consumer": {"Committed", "DuplicatesIgnored", "RecordsFailed", "PoisonRecords", "DeadLettered"}
    | {"DatabaseUnavailable"},
    "reader": {"Reads"},
    "migrator": {"SchemaMigrated", "SchemaMigrationFailed"},
}

# The AWS metrics the alarms may read: namespace -> (metric names, dimension names), as the services
# document them (Amazon SQS, Lambda and API Gateway "available CloudWatch metrics" pages).
AWS_METRICS = {
    "AWS/SQS": (
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
        {"QueueName"},
    ),
    "AWS/Lambda": (
        {"Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"},
        {"FunctionName"},
    ),
    "AWS/ApiGateway": (
        {"5XXError", "4XXError", "Count", "Latency", "IntegrationLatency"},
        {"ApiName", "Stage"},
    ),
}
# What an AWS metric's dimension must name: a resource of this stack, of the type the dimension is about.
AWS_DIMENSION_RESOURCE_TYPES = {
    "QueueName": "AWS::SQS::Queue",
    "FunctionName": "AWS::Serverless::Function",
}


@dataclass(frozen=True)
class Emission:
    namespace: str
    metric: str
    dimensions: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class MetricReader:
    source: str  # e.g. "alarm DatabaseUnavailableAlarm"
    namespace: str
    metric: str
    dimensions: dict[str, Any]  # name -> value, resolved where the local stack can (mappings, parameters)

    @property
    def resolved_dimensions(self) -> frozenset[tuple[str, str]]:
        return frozenset((name, str(value)) for name, value in self.dimensions.items())


def metric_readers(template: Template) -> list[MetricReader]:
    """Everything in the template that reads a CloudWatch metric (today: the alarms)."""
    readers = []
    for logical_id, resource in template.document["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            properties = resource["Properties"]
            readers.append(
                MetricReader(
                    source=f"alarm {logical_id}",
                    namespace=template.resolve(properties["Namespace"]),
                    metric=template.resolve(properties["MetricName"]),
                    dimensions={
                        dimension["Name"]: template.resolve(dimension["Value"])
                        for dimension in properties.get("Dimensions", [])
                    },
                )
            )
    return readers


def emissions(stdout: str) -> set[Emission]:
    """The metrics in the EMF lines of a captured stdout (other lines are logs)."""
    found = set()
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, str(document[name])) for name in dimension_set)
                for metric in directive["Metrics"]:
                    found.add(Emission(directive["Namespace"], metric["Name"], dimensions))
    return found


def function_powertools_environment() -> dict[str, str]:
    """The POWERTOOLS_* variables template.yaml gives every function (Globals), resolved."""
    variables = TEMPLATE.document["Globals"]["Function"]["Environment"]["Variables"]
    return {
        name: str(TEMPLATE.resolve(value))
        for name, value in variables.items()
        if name.startswith("POWERTOOLS_")
    }


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def closed_port() -> int:
    """A local port nothing listens on: a database that refuses connections at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def last_receive_of_a_poison_record(max_receive_count: int) -> dict[str, Any]:
    """The sample batch, its first record unreadable and on the receive SQS would dead-letter it."""
    event = sample("consumer-batch-two-customers.json")
    poison = event["Records"][0]
    poison["body"] = '{"not": "a queue message"}'
    poison["attributes"]["ApproximateReceiveCount"] = str(max_receive_count)
    return event


@pytest.fixture
def emitted(
    test_database: TestDatabase,
    queues: Queues,
    response_url: tuple[str, list[dict[str, Any]]],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, set[Emission]]:
    """function name -> the metrics its handler emitted over cases that exercise each of them."""
    for name, value in function_powertools_environment().items():
        monkeypatch.setenv(name, value)
    found: dict[str, set[Emission]] = {}

    def invoke(function: str, handler: Callable[..., Any], event: dict[str, Any]) -> Any:
        with redirect_stdout(io.StringIO()) as stdout:
            response = handler(event, lambda_context)
        found.setdefault(function, set()).update(emissions(stdout.getvalue()))
        return response

    producer = load_handler("producer", monkeypatch, queues.env).handler
    for name in ("producer-valid-post.json", "producer-invalid-post.json"):
        invoke("producer", producer, sample(name))
    queues.sqs.delete_queue(QueueUrl=queues.queue_url)  # SQS refuses the next message
    assert invoke("producer", producer, sample("producer-valid-post.json"))["statusCode"] == 503

    consumer = load_handler("consumer", monkeypatch, {**test_database.env, **queues.env}).handler
    for event in (
        sample("consumer-batch-two-customers.json"),
        sample("consumer-redelivered.json"),
        last_receive_of_a_poison_record(queues.max_receive_count),
    ):
        invoke("consumer", consumer, event)
    unreachable = {"DB_PORT": str(closed_port()), "DB_CONNECT_TIMEOUT": "1"}
    consumer = load_handler(
        "consumer", monkeypatch, {**test_database.env, **queues.env, **unreachable}
    ).handler
    invoke("consumer", consumer, sample("consumer-batch-two-customers.json"))

    reader = load_handler("reader", monkeypatch, test_database.env).handler
    invoke("reader", reader, sample("reader-get-customer-found.json"))

    url, _ = response_url
    migrator = load_handler(
        "migrator",
        monkeypatch,
        {**test_database.env, "APP_DB_USER": "ingest_app_metrics", "READER_DB_USER": "ingest_reader_metrics"},
    )
    # MariaDB lacks Aurora's AWSAuthenticationPlugin: with it the migration fails; a built-in plugin
    # stands in for a migration that succeeds.
    create = {**sample("migrator-create.json"), "ResponseURL": url}
    invoke("migrator", migrator.handler, create)
    monkeypatch.setattr(migrator, "APP_USER_AUTHENTICATION", "IDENTIFIED VIA unix_socket")
    try:
        invoke("migrator", migrator.handler, create)
    finally:
        with test_database.server.connect() as connection, connection.cursor() as cursor:
            for user in ("ingest_app_metrics", "ingest_reader_metrics"):
                cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    return found


def test_the_handlers_emit_the_catalogued_metrics_under_the_templates_namespace_and_service(emitted):
    # GIVEN the namespace and service every function gets from template.yaml
    environment = function_powertools_environment()
    service = frozenset({("service", environment["POWERTOOLS_SERVICE_NAME"])})

    # THEN each handler emitted exactly its catalogued metrics, there, with the service dimension
    for function, metrics in EMITTED_METRICS.items():
        assert {emission.metric for emission in emitted[function]} == metrics, function
        for emission in emitted[function]:
            assert emission.namespace == environment["POWERTOOLS_METRICS_NAMESPACE"], emission
            assert emission.dimensions == service, emission


def test_every_alarm_on_a_custom_metric_reads_a_metric_the_code_emits(emitted):
    all_emitted = set().union(*emitted.values())
    custom = [reader for reader in metric_readers(TEMPLATE) if not reader.namespace.startswith("AWS/")]
    assert custom, "no alarm reads a custom metric: the DatabaseUnavailable alarm is gone?"
    for reader in custom:
        # Alarms match a metric by namespace, name and the exact set of dimensions.
        assert Emission(reader.namespace, reader.metric, reader.resolved_dimensions) in all_emitted, reader


def test_every_alarm_on_an_aws_metric_reads_a_published_metric_of_this_stack():
    resources = TEMPLATE.document["Resources"]
    api_name = TEMPLATE.resolve(resources["IngestApi"]["Properties"]["Name"])
    aws = [reader for reader in metric_readers(TEMPLATE) if reader.namespace.startswith("AWS/")]
    assert aws
    for reader in aws:
        metrics, dimension_names = AWS_METRICS[reader.namespace]
        assert reader.metric in metrics, reader
        assert set(reader.dimensions) <= dimension_names, reader
        for name, value in reader.dimensions.items():
            if name in AWS_DIMENSION_RESOURCE_TYPES:
                # !GetAtt Queue.QueueName or !Ref Function: a resource of this stack, of the right type
                target = value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]
                assert resources[target]["Type"] == AWS_DIMENSION_RESOURCE_TYPES[name], reader
            elif name == "ApiName":
                assert value == api_name, reader
            elif name == "Stage":
                assert value == TEMPLATE.resolve(resources["IngestApi"]["Properties"]["StageName"]), reader
