"""The metrics the handlers emit and what in template.yaml reads them: a renamed metric fails here.

Each handler runs through its entry point (functions/<name>/app.py handler) with the Powertools
environment template.yaml gives every function, over cases that make it emit each of its metrics; the
EMF lines Powertools Metrics prints to stdout are captured (stdout is redirected around each call only:
the handlers' loggers keep the stream they found at import, which must outlive this test). Then every
alarm on a custom metric must name a namespace, metric and dimension set the code emitted, and every
alarm on an AWS metric a metric AWS publishes, for a resource of this stack. `metric_readers` gathers the
alarms' metrics and the dashboard's widgets, which get the same checks.
"""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local.template import Template
from tests.conftest import load_handler
from tests.emf import metric_values
from tests.migrator import STAND_IN_AUTHENTICATION, migrator_env

if TYPE_CHECKING:
    from local.lambda_runtime import LambdaContext
    from tests.conftest import FreshDatabase
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

# The AWS metrics the alarms and the dashboard may read: namespace -> metric -> the dimension sets AWS
# publishes it with, as the services document them (Amazon SQS, Lambda, API Gateway "available CloudWatch
# metrics"; Aurora "Amazon CloudWatch metrics for Amazon Aurora" (cluster, role and instance); "Monitoring
# RDS Proxy metrics with Amazon CloudWatch" (dimension sets ProxyName; ProxyName, TargetGroup, TargetRole)).
_QUEUE = {frozenset({"QueueName"})}
_FUNCTION = {frozenset({"FunctionName"})}
_STAGE = {frozenset({"ApiName", "Stage"})}
_AURORA = {frozenset({"DBInstanceIdentifier"}), frozenset({"DBClusterIdentifier", "Role"})}
_PROXY = {frozenset({"ProxyName"}), frozenset({"ProxyName", "TargetGroup", "TargetRole"})}
AWS_METRICS: dict[str, dict[str, set[frozenset[str]]]] = {
    "AWS/SQS": dict.fromkeys(
        (
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
        ),
        _QUEUE,
    ),
    "AWS/Lambda": dict.fromkeys(
        ("Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"), _FUNCTION
    ),
    "AWS/ApiGateway": dict.fromkeys(
        ("5XXError", "4XXError", "Count", "Latency", "IntegrationLatency"), _STAGE
    ),
    "AWS/RDS": {
        **dict.fromkeys(
            ("CPUUtilization", "FreeableMemory", "DatabaseConnections", "CommitLatency"), _AURORA
        ),
        "AuroraReplicaLag": {frozenset({"DBInstanceIdentifier"})},
        "AuroraReplicaLagMaximum": {frozenset({"DBClusterIdentifier"})},
        "ClientConnections": {frozenset({"ProxyName"})},
        "DatabaseConnectionsBorrowLatency": {frozenset({"ProxyName"})},
        "AvailabilityPercentage": {frozenset({"ProxyName", "TargetGroup", "TargetRole"})},
    },
}
# RDS Proxy's DatabaseConnections shares its name with Aurora's: by proxy, or by instance and role.
AWS_METRICS["AWS/RDS"]["DatabaseConnections"] = _AURORA | _PROXY
# What an AWS metric's dimension must name: a resource of this stack, of the type the dimension is about.
AWS_DIMENSION_RESOURCE_TYPES = {
    "QueueName": "AWS::SQS::Queue",
    "FunctionName": "AWS::Serverless::Function",
    "DBClusterIdentifier": "AWS::RDS::DBCluster",
    "DBInstanceIdentifier": "AWS::RDS::DBInstance",
    "ProxyName": "AWS::RDS::DBProxy",
}
# Dimensions whose values are words AWS defines, not names of resources.
AWS_DIMENSION_VALUES = {"Role": {"WRITER", "READER"}, "TargetRole": {"READ_WRITE", "READ_ONLY"}}
# A ${Name} of a Fn::Sub body that only CloudFormation resolves stands here until the body is parsed.
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:._]+)\}")
_UNRESOLVED = re.compile(r"^@@([A-Za-z0-9:._]+)@@$")


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
    """Everything in the template that reads a CloudWatch metric: alarms (one metric, or the metrics of
    a metric-math alarm) and the dashboard's metric widgets."""
    readers = []
    for logical_id, resource in template.document["Resources"].items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            properties = resource["Properties"]
            metrics = [
                query["MetricStat"]["Metric"]
                for query in properties.get("Metrics", [])
                if "MetricStat" in query
            ]
            for metric in metrics or [properties]:
                readers.append(
                    MetricReader(
                        source=f"alarm {logical_id}",
                        namespace=template.resolve(metric["Namespace"]),
                        metric=template.resolve(metric["MetricName"]),
                        dimensions={
                            dimension["Name"]: template.resolve(dimension["Value"])
                            for dimension in metric.get("Dimensions", [])
                        },
                    )
                )
        elif resource["Type"] == "AWS::CloudWatch::Dashboard":
            readers.extend(dashboard_metric_readers(template, logical_id))
    return readers


def dashboard_body(template: Template, logical_id: str = "Dashboard") -> dict[str, Any]:
    """The dashboard's JSON body, its Fn::Sub names resolved as the local stack resolves them; what only
    CloudFormation knows (a resource's name or attribute) stays as @@Name@@ or @@Resource.Attribute@@."""
    body, variables = template.resource_properties(logical_id)["DashboardBody"]["Fn::Sub"]

    def substitute(match: re.Match[str]) -> str:
        name = match[1]
        if "." in name:  # ${Resource.Attribute}
            return f"@@{name}@@"
        value = template.resolve(variables[name]) if name in variables else template.resolve({"Ref": name})
        return str(value) if isinstance(value, str | int) else f"@@{name}@@"

    return json.loads(_SUB_VARIABLE.sub(substitute, body))


def _as_in_an_alarm(value: str) -> Any:
    """A dimension value as an alarm's Dimensions state it: a !Ref or !GetAtt for what only
    CloudFormation resolves, else the value itself."""
    if unresolved := _UNRESOLVED.match(value):
        resource, _, attribute = unresolved[1].partition(".")
        return {"Fn::GetAtt": [resource, attribute]} if attribute else {"Ref": resource}
    return value


def dashboard_metric_readers(template: Template, logical_id: str) -> list[MetricReader]:
    """One reader per metric row of the widgets: [namespace, metric, name, value, ..., {options}]."""
    readers = []
    for index, widget in enumerate(dashboard_body(template, logical_id)["widgets"]):
        for row in widget["properties"].get("metrics", []):
            namespace, metric, *dimensions = row[:-1] if isinstance(row[-1], dict) else row
            readers.append(
                MetricReader(
                    source=f"dashboard widget {index} ({widget['properties']['title']})",
                    namespace=namespace,
                    metric=metric,
                    dimensions={
                        name: _as_in_an_alarm(value)
                        for name, value in zip(dimensions[::2], dimensions[1::2], strict=True)
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


def poison_record_on_receive(receive_count: int) -> dict[str, Any]:
    """The sample batch, its first record unreadable and received for the `receive_count`th time."""
    event = sample("consumer-batch-two-customers.json")
    poison = event["Records"][0]
    poison["body"] = '{"not": "a queue message"}'
    poison["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return event


@pytest.fixture
def emitted(
    fresh_database: FreshDatabase,
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

    consumer = load_handler("consumer", monkeypatch, {**fresh_database.env, **queues.env}).handler
    for event in (
        sample("consumer-batch-two-customers.json"),
        sample("consumer-redelivered.json"),
        poison_record_on_receive(1),  # PoisonRecords, RecordsFailed
        poison_record_on_receive(queues.poison_receive_count),  # DeadLettered
    ):
        invoke("consumer", consumer, event)
    unreachable = {"DB_PORT": str(closed_port()), "DB_CONNECT_TIMEOUT": "1"}
    consumer = load_handler(
        "consumer", monkeypatch, {**fresh_database.env, **queues.env, **unreachable}
    ).handler
    invoke("consumer", consumer, sample("consumer-batch-two-customers.json"))

    reader = load_handler("reader", monkeypatch, fresh_database.env).handler
    invoke("reader", reader, sample("reader-get-customer-found.json"))

    url, _ = response_url
    env = migrator_env(
        fresh_database.server, fresh_database.name, "ingest_app_metrics", "ingest_reader_metrics"
    )
    migrator = load_handler("migrator", monkeypatch, env)
    # MariaDB lacks Aurora's AWSAuthenticationPlugin: with it the migration fails; a built-in plugin
    # stands in for a migration that succeeds.
    create = {**sample("migrator-create.json"), "ResponseURL": url}
    invoke("migrator", migrator.handler, create)
    monkeypatch.setattr(migrator, "FUNCTION_USER_AUTHENTICATION", STAND_IN_AUTHENTICATION)
    try:
        invoke("migrator", migrator.handler, create)
    finally:
        with fresh_database.server.connect() as connection, connection.cursor() as cursor:
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


def test_the_consumer_emits_only_the_counts_that_are_not_zero(
    fresh_database: FreshDatabase,
    queues: Queues,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
):
    # GIVEN the consumer with the template's Powertools environment
    for name, value in function_powertools_environment().items():
        monkeypatch.setenv(name, value)
    consumer = load_handler("consumer", monkeypatch, {**fresh_database.env, **queues.env}).handler

    def metrics_of(event: dict[str, Any]) -> dict[str, list[float]]:
        with redirect_stdout(io.StringIO()) as stdout:
            consumer(event, lambda_context)
        return metric_values(stdout.getvalue())

    # WHEN it stores a new batch of three records, then gets the first of them again, then a batch
    # whose first record is unreadable
    new, again, poisoned = (
        metrics_of(sample("consumer-batch-two-customers.json")),
        metrics_of(sample("consumer-redelivered.json")),
        metrics_of(poison_record_on_receive(1)),
    )

    # THEN each batch's document carries the counts that are not zero, and those alone: a missing zero
    # leaves the Sum that every alarm and widget reads unchanged
    assert new == {"Committed": [3.0]}
    assert again == {"DuplicatesIgnored": [1.0]}
    # the poison fails with its group's next record; the third record was stored by the first batch
    assert poisoned == {"PoisonRecords": [1.0], "RecordsFailed": [2.0], "DuplicatesIgnored": [1.0]}


def test_every_alarm_and_widget_on_a_custom_metric_reads_a_metric_the_code_emits(emitted):
    all_emitted = set().union(*emitted.values())
    custom = [reader for reader in metric_readers(TEMPLATE) if not reader.namespace.startswith("AWS/")]
    assert {reader.source.split()[0] for reader in custom} == {"alarm", "dashboard"}
    for reader in custom:
        # Alarms and widgets match a metric by namespace, name and the exact set of dimensions.
        assert Emission(reader.namespace, reader.metric, reader.resolved_dimensions) in all_emitted, reader


def test_the_dashboard_shows_every_metric_the_handlers_emit_but_the_migrators():
    shown = {reader.metric for reader in metric_readers(TEMPLATE) if reader.source.startswith("dashboard")}
    for function in ("producer", "consumer", "reader"):
        assert EMITTED_METRICS[function] <= shown, function


def test_every_alarm_and_widget_on_an_aws_metric_reads_a_published_metric_of_this_stack():
    resources = TEMPLATE.document["Resources"]
    api_name = TEMPLATE.resolve(resources["IngestApi"]["Properties"]["Name"])
    aws = [reader for reader in metric_readers(TEMPLATE) if reader.namespace.startswith("AWS/")]
    assert {reader.source.split()[0] for reader in aws} == {"alarm", "dashboard"}
    for reader in aws:
        assert reader.metric in AWS_METRICS[reader.namespace], reader
        assert frozenset(reader.dimensions) in AWS_METRICS[reader.namespace][reader.metric], reader
        for name, value in reader.dimensions.items():
            if name in AWS_DIMENSION_RESOURCE_TYPES:
                # !GetAtt Queue.QueueName or !Ref Function: a resource of this stack, of the right type
                target = value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value["Ref"]
                assert resources[target]["Type"] == AWS_DIMENSION_RESOURCE_TYPES[name], reader
            elif name == "ApiName":
                assert value == api_name, reader
            elif name == "Stage":
                assert value == TEMPLATE.resolve(resources["IngestApi"]["Properties"]["StageName"]), reader
            elif name == "TargetGroup":
                assert value == resources["DatabaseProxyTargetGroup"]["Properties"]["TargetGroupName"], reader
            else:
                assert value in AWS_DIMENSION_VALUES[name], reader


def test_the_dashboards_event_timeline_reads_the_log_group_the_rds_event_rule_writes():
    (log_widget,) = [widget for widget in dashboard_body(TEMPLATE)["widgets"] if widget["type"] == "log"]
    (target,) = TEMPLATE.resource_properties("RdsEventsRecordRule")["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RdsEventsLogGroup", "Arn"]}
    assert log_widget["properties"]["query"].startswith("SOURCE '@@RdsEventsLogGroup@@' |")
