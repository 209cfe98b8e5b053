"""`python -m ops verify` against moto (CloudFormation, API Gateway, WAF, Cognito, SNS, CloudWatch, Logs,
Lambda, SQS, STS, X-Ray), botocore's Stubber for RDS Proxy's targets, canned answers for the two calls
moto lacks (CloudWatch's alarm history; SNS's unconfirmed subscription), and a local HTTP server standing
in for the API stage and the user pool's token endpoint (the stack's ApiUrl and TokenEndpoint outputs
point at it)."""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

from ingest.schema import schema_version
from ops.cli import main

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK = "customer-ingest-verify"
STAGE = "v1"
ALARM = f"{STACK}-dead-letter-queue"
RECORD_RULE = f"{STACK}-rds-events-record"
NOTIFY_RULE = f"{STACK}-rds-events-notify"
PROXY = f"{STACK}-proxy"
EVENTS_GROUP = f"/aws/events/{STACK}-rds"
ALARM_EMAIL = "oncall@example.com"
CONSUMER = f"{STACK}-consumer"
CHECKS = [
    "credentials",
    "stack",
    "api-stage",
    "api-round-trip",
    "alarm-delivery",
    "rds-events",
    "proxy-targets",
    "tracing",
    "schema",
    "event-source-mapping",
]
TRACE_HEADER = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=1")


# ---- the stand-in for the API stage and the token endpoint ------------------------------------------


@dataclass
class StandIn:
    """What API Gateway, the functions and Cognito's token endpoint do for one round trip: tokens for the
    machine clients' scopes, 202 for a POST, 404 until the record is committed, then the record; each
    request traced into X-Ray (moto's) under the trace id it carried."""

    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # client id -> (secret, scope)
    auth_mode: str = "COGNITO"
    reads_before_commit: int = 1
    never_commit: bool = False
    altered: dict[str, Any] = field(default_factory=dict)  # fields the read back changes
    traced: bool = True
    traces_responses: bool = False  # as Powertools' Tracer does with capture_response on
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def token(self, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        client_id, _, secret = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
        known = self.clients.get(client_id)
        if form.get("grant_type") != "client_credentials" or known != (secret, form.get("scope")):
            return 400, {"error": "invalid_client"}
        return 200, {"access_token": f"token-{form['scope']}", "token_type": "Bearer", "expires_in": 3600}

    def allowed(self, headers: dict[str, str], scope: str) -> bool:
        authorization = headers.get("Authorization", "")
        if self.auth_mode == "IAM":
            return bool(
                re.match(rf"AWS4-HMAC-SHA256 Credential=\w+/\d{{8}}/{REGION}/execute-api/", authorization)
            )
        return authorization == f"token-{scope}"

    def api(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == f"/{STAGE}/customers":
            if not self.allowed(headers, "customers/write"):
                return 401, {"message": "Unauthorized"}
            document = json.loads(body)
            request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, headers["Idempotency-Key"]))
            self.records[request_id] = {"payload": document, "reads": 0}
            return 202, {
                "request_id": request_id,
                "customer_id": document["customer_id"],
                "status": "accepted",
            }
        found = re.fullmatch(rf"/{STAGE}/records/([\w-]+)", path)
        if method == "GET" and found:
            if not self.allowed(headers, "customers/read"):
                return 401, {"message": "Unauthorized"}
            record = self.records.get(found[1])
            if record is None or self.never_commit or record["reads"] < self.reads_before_commit:
                if record is not None:
                    record["reads"] += 1
                return 404, {"error": {"code": "record_not_found", "message": "not yet committed or unknown"}}
            payload = record["payload"] | self.altered
            return 200, {"request_id": found[1], "customer_id": payload["customer_id"], "status": "committed",
                         "accepted_at": "2026-12-01T00:00:00Z", "committed_at": "2026-12-01T00:00:01Z",
                         "payload": payload}  # fmt: skip
        return 404, {"message": "Not Found"}

    def trace(self, headers: dict[str, str], path: str, reply: dict[str, Any]) -> None:
        root = re.match(r"Root=([\w-]+)", headers.get("X-Amzn-Trace-Id", ""))
        if not (self.traced and root):
            return
        now = time.time()
        segment: dict[str, Any] = {
            "trace_id": root[1],
            "id": secrets.token_hex(8),
            "name": f"{STACK}-api/{STAGE}",
            "start_time": now,
            "end_time": now + 0.01,
            "http": {"request": {"url": path}},
        }
        if self.traces_responses:
            segment["metadata"] = {"handler": {"response": reply}}
        boto3.client("xray", region_name=REGION).put_trace_segments(
            TraceSegmentDocuments=[json.dumps(segment)]
        )


def serve(stand_in: StandIn) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            stand_in.seen.append((self.command, self.path, headers))
            if self.path == "/oauth2/token":
                status, reply = stand_in.token(
                    headers.get("Authorization", ""), dict(urllib.parse.parse_qsl(body.decode()))
                )
            else:
                status, reply = stand_in.api(self.command, self.path, headers, body)
                stand_in.trace(headers, self.path, reply)
            encoded = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        do_GET = do_POST = answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server, thread


# ---- the deployed stack: moto's services, CloudFormation's answers amended ---------------------------


def healthy_targets() -> list[dict[str, Any]]:
    """DescribeDBProxyTargets of an Aurora target group: the tracked cluster and its two instances."""
    return [
        {"RdsResourceId": "ingest-cluster", "Type": "TRACKED_CLUSTER", "Port": 3306},
        {"RdsResourceId": "ingest-writer", "Type": "RDS_INSTANCE", "Role": "READ_WRITE", "Port": 3306,
         "TargetHealth": {"State": "AVAILABLE"}},
        {"RdsResourceId": "ingest-reader", "Type": "RDS_INSTANCE", "Role": "READ_ONLY", "Port": 3306,
         "TargetHealth": {"State": "AVAILABLE"}},
    ]  # fmt: skip


@dataclass
class Deployed:
    """The pieces a deployed stack has, made in moto, and the stack that lists them."""

    stand_in: StandIn
    api_id: str
    web_acl_arn: str
    web_acl_physical_id: str
    topic_arn: str
    queue_url: str
    mapping_uuid: str
    resources: dict[str, tuple[str, str]]  # logical id -> (type, physical id)

    @property
    def stage_arn(self) -> str:
        return f"arn:aws:apigateway:{REGION}::/restapis/{self.api_id}/stages/{STAGE}"

    def deploy(
        self, parameters: dict[str, str] | None = None, outputs: dict[str, str | None] | None = None
    ) -> None:
        """Create the stack with template.yaml's parameters and outputs (an output None is left out)."""
        parameters = {
            "ApiAuthMode": self.stand_in.auth_mode,
            "ApiStageName": STAGE,
            "ApiThrottlingRateLimit": "100",
            "ApiThrottlingBurstLimit": "200",
            "ApiWafMode": "Count",
            "AlarmEmail": ALARM_EMAIL,
            "ConsumerMaxConcurrency": "5",
        } | (parameters or {})
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool = cognito.list_user_pools(MaxResults=1)["UserPools"][0]["Id"]
        by_scope = {scope: client_id for client_id, (_, scope) in self.stand_in.clients.items()}
        values = {
            "ApiUrl": f"{self.stand_in.url}/{STAGE}/",
            "ApiAuthMode": parameters["ApiAuthMode"],
            "UserPoolId": pool,
            "WriterClientId": by_scope["customers/write"],
            "ReaderClientId": by_scope["customers/read"],
            "TokenEndpoint": f"{self.stand_in.url}/oauth2/token",
            "AlarmTopicArn": self.topic_arn,
            "RdsEventsLogGroupName": EVENTS_GROUP,
            "SchemaVersion": schema_version(),
        } | (outputs or {})
        template = {
            "Parameters": {name: {"Type": "String"} for name in parameters},
            "Resources": {
                "CustomerQueue": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {"QueueName": f"{STACK}-customers.fifo", "FifoQueue": True},
                }
            },
            "Outputs": {"QueueUrl": {"Value": {"Ref": "CustomerQueue"}}}
            | {key: {"Value": value} for key, value in values.items() if value is not None},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
        )

    def session(
        self,
        proxy_targets: list[dict[str, Any]] | None = None,
        stack_status: str | None = None,
        alarm_history: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        subscriptions: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Session:
        """The CLI's session: RDS Proxy's targets from a Stubber, the alarm history (moto has none) from
        `alarm_history`, the topic's subscriptions from `subscriptions` instead of moto if given."""
        canned = {"cloudwatch.DescribeAlarmHistory": alarm_history or no_failed_actions}
        if subscriptions:
            canned["sns.ListSubscriptionsByTopic"] = subscriptions
        rds = boto3.client("rds", region_name=REGION)
        stubber = Stubber(rds)
        stubber.add_response(
            "describe_db_proxy_targets",
            {"Targets": proxy_targets or healthy_targets()},
            {"DBProxyName": PROXY},
        )
        stubber.activate()
        return Session(self.resources, stack_status, canned, {"rds": rds})


class Session:
    """boto3.Session as the CLI uses it: moto's clients (or a stubbed one), with CloudFormation's answers
    listing the resources moto's CloudFormation cannot create (and, if asked, another stack status), and
    canned answers for `canned` operations ("service.Operation") moto does not implement."""

    def __init__(
        self,
        resources: dict[str, tuple[str, str]],
        stack_status: str | None,
        canned: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
        stubbed: dict[str, Any],
    ) -> None:
        self.resources, self.stack_status, self.canned, self.stubbed = (
            resources,
            stack_status,
            canned,
            stubbed,
        )

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        if service in self.stubbed:
            return self.stubbed[service]
        client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        events, name = client.meta.events, client.meta.service_model.service_id.hyphenize()
        if service == "cloudformation":
            events.register("after-call.cloudformation.ListStackResources", self._list_resources)
            events.register("after-call.cloudformation.DescribeStacks", self._status)
        for key, answer in self.canned.items():
            canned_service, operation = key.split(".")
            if canned_service == service:
                events.register(f"before-parameter-build.{name}.{operation}", _keep_params)
                events.register(f"before-call.{name}.{operation}", _answer_with(answer))
        return client

    def get_credentials(self) -> Any:
        return boto3.Session(region_name=REGION).get_credentials()

    def _list_resources(self, parsed: dict[str, Any], **_: Any) -> None:
        parsed["StackResourceSummaries"].extend(
            {"LogicalResourceId": logical_id, "PhysicalResourceId": physical_id, "ResourceType": kind,
             "ResourceStatus": "CREATE_COMPLETE", "LastUpdatedTimestamp": datetime.now(UTC)}
            for logical_id, (kind, physical_id) in self.resources.items()
        )  # fmt: skip

    def _status(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.stack_status:
            for stack in parsed.get("Stacks", []):
                stack["StackStatus"] = self.stack_status


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["canned_params"] = dict(params)


def _answer_with(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    def handler(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("", 200, {}, None), answer(context["canned_params"])

    return handler


def no_failed_actions(params: dict[str, Any]) -> dict[str, Any]:
    """DescribeAlarmHistory of an alarm whose notifications went out."""
    return {"AlarmHistoryItems": [
        {"AlarmName": params["AlarmName"], "HistoryItemType": "Action", "Timestamp": datetime.now(UTC),
         "HistorySummary": "Successfully executed action arn:aws:sns:eu-west-1:123456789012:alarms"}
    ]}  # fmt: skip


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """Everything a deployed stack has, in moto, and the stand-in API serving on 127.0.0.1."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        stand_in = StandIn()
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool = cognito.create_user_pool(PoolName=f"{STACK}-callers")["UserPool"]["Id"]
        for role, scope in (("writer", "customers/write"), ("reader", "customers/read")):
            client = cognito.create_user_pool_client(
                UserPoolId=pool, ClientName=f"{STACK}-{role}", GenerateSecret=True,
                AllowedOAuthFlows=["client_credentials"], AllowedOAuthScopes=[scope],
            )["UserPoolClient"]  # fmt: skip
            stand_in.clients[client["ClientId"]] = (client["ClientSecret"], scope)

        apigateway = boto3.client("apigateway", region_name=REGION)
        api_id = apigateway.create_rest_api(name=f"{STACK}-api")["id"]
        root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
        apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
        apigateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
        deployment = apigateway.create_deployment(restApiId=api_id)["id"]
        apigateway.create_stage(
            restApiId=api_id, stageName=STAGE, deploymentId=deployment, tracingEnabled=True
        )
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName=f"{STACK}-api-access")
        access_log_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{STACK}-api-access"
        apigateway.update_stage(
            restApiId=api_id,
            stageName=STAGE,
            patchOperations=[
                {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": access_log_arn},
                {
                    "op": "replace",
                    "path": "/accessLogSettings/format",
                    "value": '{"requestId":"$context.requestId"}',
                },
                {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
                {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
            ],
        )
        wafv2 = boto3.client("wafv2", region_name=REGION)
        visibility = {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": "api"}
        web_acl = wafv2.create_web_acl(
            Name=f"{STACK}-api", Scope="REGIONAL", DefaultAction={"Allow": {}}, VisibilityConfig=visibility
        )["Summary"]
        stage_arn = f"arn:aws:apigateway:{REGION}::/restapis/{api_id}/stages/{STAGE}"
        wafv2.associate_web_acl(WebACLArn=web_acl["ARN"], ResourceArn=stage_arn)

        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name=f"{STACK}-alarms")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=ALARM_EMAIL)
        boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
            AlarmName=ALARM, Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
            Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=0,
            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
        )  # fmt: skip
        logs.create_log_group(logGroupName=EVENTS_GROUP)
        logs.create_log_stream(logGroupName=EVENTS_GROUP, logStreamName="rds")
        logs.put_log_events(
            logGroupName=EVENTS_GROUP,
            logStreamName="rds",
            logEvents=[{"timestamp": int(time.time() * 1000), "message": '{"source": "aws.rds"}'}],
        )

        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName=f"{STACK}-customers.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="consumer",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        awslambda = boto3.client("lambda", region_name=REGION)
        awslambda.create_function(
            FunctionName=CONSUMER, Runtime="python3.13", Role=role, Handler="app.handler",
            Code={"ZipFile": lambda_zip()},
        )  # fmt: skip
        mapping = awslambda.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName=CONSUMER, BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"], ScalingConfig={"MaximumConcurrency": 5},
        )["UUID"]  # fmt: skip

        web_acl_physical_id = f"{web_acl['Name']}|{web_acl['Id']}|REGIONAL"
        server, thread = serve(stand_in)
        try:
            yield Deployed(
                stand_in=stand_in,
                api_id=api_id,
                web_acl_arn=web_acl["ARN"],
                web_acl_physical_id=web_acl_physical_id,
                topic_arn=topic,
                queue_url=queue_url,
                mapping_uuid=mapping,
                resources={
                    "IngestApi": ("AWS::ApiGateway::RestApi", api_id),
                    "ApiWebAcl": ("AWS::WAFv2::WebACL", web_acl_physical_id),
                    "DeadLetterQueueAlarm": ("AWS::CloudWatch::Alarm", ALARM),
                    "RdsEventsRecordRule": ("AWS::Events::Rule", RECORD_RULE),
                    "RdsEventsToOperatorRule": ("AWS::Events::Rule", NOTIFY_RULE),
                    "DatabaseProxy": ("AWS::RDS::DBProxy", PROXY),
                    "ConsumerFunction": ("AWS::Lambda::Function", CONSUMER),
                },
            )
        finally:
            server.shutdown()
            thread.join()


@pytest.fixture
def deployed(world: Deployed) -> Deployed:
    world.deploy()
    return world


def verify(session: Any, *options: str, record_wait: str = "0.5") -> tuple[int, str]:
    out = io.StringIO()
    code = main(
        ["--region", REGION, "--poll-interval", "0", "--stack", STACK, *options,
         "verify", "--record-wait", record_wait, "--trace-wait", "0.5"],
        out=out,
        session=session,
    )  # fmt: skip
    return code, out.getvalue()


def lines(out: str) -> dict[str, str]:
    """The output's line of each check, by check name (in the order printed)."""
    found = {}
    for line in out.splitlines():
        status, name = re.match(r"(PASS|FAIL|SKIP) ([\w-]+): ", line).groups()  # type: ignore[union-attr]
        found[name] = line
        assert line.startswith(status)
    return found


def statuses(out: str) -> dict[str, str]:
    return {name: line.split(" ", 1)[0] for name, line in lines(out).items()}


def all_pass_but(*failing: str) -> dict[str, str]:
    return {name: "FAIL" if name in failing else "PASS" for name in CHECKS}


# ---- every check passes -------------------------------------------------------------------------------


def test_a_deployed_stack_passes_every_check(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN a stack deployed as template.yaml says (Cognito, WAF in Count mode) WHEN verify runs
    THEN every check prints one PASS line, in order, and the exit status is 0; the round trip used each
    machine client's token for its scope, an Idempotency-Key and a sampled trace header, and the bounded
    waits were announced on stderr."""
    code, out = verify(deployed.session())

    assert code == 0, out
    assert list(lines(out)) == CHECKS
    assert set(statuses(out).values()) == {"PASS"}
    assert f"web ACL {STACK}-api on the stage (Count)" in lines(out)["api-stage"]
    posts = [headers for method, path, headers in deployed.stand_in.seen if path == f"/{STAGE}/customers"]
    reads = [
        headers for method, path, headers in deployed.stand_in.seen if path.startswith(f"/{STAGE}/records/")
    ]
    assert [headers["Authorization"] for headers in posts] == ["token-customers/write"]
    assert {headers["Authorization"] for headers in reads} == {"token-customers/read"}
    assert posts[0]["Idempotency-Key"].startswith("ops-verify-")
    assert TRACE_HEADER.fullmatch(posts[0]["X-Amzn-Trace-Id"])
    assert {headers["X-Amzn-Trace-Id"] for headers in reads} == {posts[0]["X-Amzn-Trace-Id"]}
    errors = capsys.readouterr().err
    assert "for up to 0.5 s" in errors
    assert "Traceback" not in errors
