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
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

from ingest.schema import schema_version
from ops.cli import main
from ops.verify import Verification

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
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
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
            "DatabaseDeletionProtection": "true",
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
        if service not in self.stubbed:  # one client per service, as the CLI makes them cheaply
            self.stubbed[service] = self._moto_client(service)
        return self.stubbed[service]

    def _moto_client(self, service: str) -> Any:
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


def test_json_output_lists_each_check_with_its_verdict(deployed: Deployed) -> None:
    """GIVEN a deployed stack whose schema differs from this checkout's WHEN verify runs with --output json
    THEN stdout is one JSON list of {check, status, detail, fix, doc}, every check once, the failing one
    with its fix and document, and the exit status is 1."""
    boto3.client("cloudformation", region_name=REGION).delete_stack(StackName=STACK)
    deployed.deploy(outputs={"SchemaVersion": "0123456789abcdef"})

    code, out = verify(deployed.session(), "--output", "json")

    assert code == 1
    verdicts = json.loads(out)
    assert [verdict["check"] for verdict in verdicts] == CHECKS
    assert all(set(verdict) == {"check", "status", "detail", "fix", "doc"} for verdict in verdicts)
    assert {verdict["check"]: verdict["status"] for verdict in verdicts} == all_pass_but("schema")
    schema = verdicts[CHECKS.index("schema")]
    assert "0123456789abcdef" in schema["detail"]
    assert schema_version() in schema["detail"]
    assert schema["fix"].startswith("deploy this checkout")
    assert "crpg-ref-responses" in schema["doc"]


def test_iam_mode_signs_the_round_trip_with_the_operators_credentials(world: Deployed) -> None:
    """GIVEN a stack with ApiAuthMode IAM and no WAF WHEN verify runs THEN the round trip's requests carry
    SigV4 signatures for execute-api in the stack's region (the stand-in refuses anything else), and every
    check passes."""
    world.stand_in.auth_mode = "IAM"
    world.deploy(parameters={"ApiWafMode": "Off"})

    code, out = verify(world.session())

    assert code == 0, out
    assert "(IAM)" in lines(out)["api-round-trip"]
    assert "no WAF (ApiWafMode Off)" in lines(out)["api-stage"]
    assert not any(path == "/oauth2/token" for _, path, _ in world.stand_in.seen)


# ---- each check's FAIL ----------------------------------------------------------------------------------


def test_sams_extra_stage_fails_api_stage_and_nothing_else(deployed: Deployed) -> None:
    """GIVEN the API with SAM's stage "Stage" beside v1 (a template without OpenApiVersion) WHEN verify runs
    THEN api-stage fails naming both stages and OpenApiVersion, and the other checks still run and pass."""
    apigateway = boto3.client("apigateway", region_name=REGION)
    deployment = apigateway.get_deployments(restApiId=deployed.api_id)["items"][0]["id"]
    apigateway.create_stage(restApiId=deployed.api_id, stageName="Stage", deploymentId=deployment)

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("api-stage")
    line = lines(out)["api-stage"]
    assert "has stages ['Stage', 'v1'], not only v1" in line
    assert "fix: set OpenApiVersion: '2.0' on IngestApi" in line
    assert "sam-resource-api.html" in line


def test_a_stage_without_tracing_logs_or_throttling_fails_api_stage(deployed: Deployed) -> None:
    """GIVEN the stage's tracing turned off and its throttling changed by hand WHEN verify runs THEN
    api-stage fails naming both, with the throttling the parameters ask for."""
    boto3.client("apigateway", region_name=REGION).update_stage(
        restApiId=deployed.api_id,
        stageName=STAGE,
        patchOperations=[
            {"op": "replace", "path": "/tracingEnabled", "value": "false"},
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "5000"},
        ],
    )

    code, out = verify(deployed.session())

    assert code == 1
    line = lines(out)["api-stage"]
    assert "X-Ray tracing is off" in line
    assert "throttling for every method is 5000.0/s burst 200, the parameters say 100/s burst 200" in line


def test_a_stage_without_the_web_acl_fails_api_stage(deployed: Deployed) -> None:
    """GIVEN ApiWafMode Count and the web ACL taken off the stage WHEN verify runs THEN api-stage fails
    naming the stage's ARN as WAF takes it."""
    boto3.client("wafv2", region_name=REGION).disassociate_web_acl(ResourceArn=deployed.stage_arn)

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("api-stage")
    assert f"ApiWafMode is Count but no web ACL protects {deployed.stage_arn}" in lines(out)["api-stage"]


def test_a_record_read_back_different_fails_the_round_trip(deployed: Deployed) -> None:
    """GIVEN an API that stores the record with another e-mail WHEN verify runs THEN api-round-trip fails
    naming the field that differs."""
    deployed.stand_in.altered = {"email": "someone.else@example.com"}

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("api-round-trip")
    assert "read back differs from what was posted in: email" in lines(out)["api-round-trip"]


def test_a_record_never_committed_fails_the_round_trip_within_its_bound(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN an API that accepts the record but never has it committed WHEN verify runs with a 0.2 s bound
    THEN api-round-trip fails after about that long saying so, and tracing still looks at the request."""
    deployed.stand_in.never_commit = True
    started = time.monotonic()

    code, out = verify(deployed.session(), record_wait="0.2")

    assert time.monotonic() - started < 5
    assert code == 1
    assert statuses(out) == all_pass_but("api-round-trip")
    assert "was accepted (202) but not readable within 0.2 s" in lines(out)["api-round-trip"]
    assert "for up to 0.2 s" in capsys.readouterr().err


def test_a_refused_token_fails_the_round_trip_and_skips_tracing(deployed: Deployed) -> None:
    """GIVEN a token endpoint that refuses the writer client (its secret rotated) WHEN verify runs THEN
    api-round-trip fails naming the client and scope, and tracing is skipped: no request was sent."""
    writer = next(
        client for client, (_, scope) in deployed.stand_in.clients.items() if scope == "customers/write"
    )
    deployed.stand_in.clients[writer] = ("rotated", "customers/write")

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("api-round-trip", "tracing") | {"tracing": "SKIP"}
    assert f"the token endpoint refused client {writer} scope customers/write" in lines(out)["api-round-trip"]
    assert "no request was sent (see api-round-trip)" in lines(out)["tracing"]


def test_a_failed_alarm_action_fails_alarm_delivery(deployed: Deployed) -> None:
    """GIVEN an alarm whose SNS notification failed (the topic's key does not let CloudWatch use it)
    WHEN verify runs THEN alarm-delivery fails quoting the history and naming the topic policy and key."""

    def failed(params: dict[str, Any]) -> dict[str, Any]:
        return {"AlarmHistoryItems": [
            {"AlarmName": params["AlarmName"], "HistoryItemType": "Action", "Timestamp": datetime.now(UTC),
             "HistorySummary": f"Failed to execute action {deployed.topic_arn}. Received error: KMS denied"}
        ]}  # fmt: skip

    code, out = verify(deployed.session(alarm_history=failed))

    assert code == 1
    assert statuses(out) == all_pass_but("alarm-delivery")
    line = lines(out)["alarm-delivery"]
    assert f"alarm {ALARM} could not notify" in line
    assert "KMS denied" in line
    assert "kms:GenerateDataKey*" in line


def test_an_unconfirmed_subscription_fails_alarm_delivery(deployed: Deployed) -> None:
    """GIVEN the alarm address has not confirmed its subscription (SNS lists it as PendingConfirmation)
    WHEN verify runs THEN alarm-delivery fails naming the address."""

    def pending(params: dict[str, Any]) -> dict[str, Any]:
        return {"Subscriptions": [
            {"SubscriptionArn": "PendingConfirmation", "Owner": ACCOUNT, "Protocol": "email",
             "Endpoint": ALARM_EMAIL, "TopicArn": params["TopicArn"]}
        ]}  # fmt: skip

    code, out = verify(deployed.session(subscriptions=pending))

    assert code == 1
    assert statuses(out) == all_pass_but("alarm-delivery")
    assert f"{ALARM_EMAIL} has not confirmed its subscription" in lines(out)["alarm-delivery"]


def test_an_unprotected_stack_without_an_alarm_topic_passes_saying_alarms_notify_nobody(
    world: Deployed,
) -> None:
    """GIVEN a dev stack (no deletion protection) deployed without AlarmEmail nor AlarmTopicArn, which the
    template allows WHEN verify runs THEN alarm-delivery passes (nothing is delivered, so nothing fails
    to be) and says that the alarms notify nobody."""
    world.deploy(
        parameters={"AlarmEmail": "", "DatabaseDeletionProtection": "false"}, outputs={"AlarmTopicArn": None}
    )

    code, out = verify(world.session())

    assert code == 0
    assert "alarms notify nobody" in lines(out)["alarm-delivery"]


def test_a_stack_without_an_alarm_topic_fails_alarm_delivery(world: Deployed) -> None:
    """GIVEN a protected stack deployed without AlarmEmail nor AlarmTopicArn (no AlarmTopicArn output)
    WHEN verify runs THEN alarm-delivery fails saying nobody hears the alarms and how to set a
    destination."""
    world.deploy(parameters={"AlarmEmail": ""}, outputs={"AlarmTopicArn": None})

    code, out = verify(world.session())

    assert code == 1
    line = lines(out)["alarm-delivery"]
    assert "the stack has no alarm topic" in line
    assert "AlarmEmail=<address>" in line


def test_failed_rule_invocations_fail_rds_events(deployed: Deployed) -> None:
    """GIVEN EventBridge counted failed invocations of the record rule in the last hours WHEN verify runs
    THEN rds-events fails naming the rule and the count."""
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/Events",
        MetricData=[
            {"MetricName": "FailedInvocations", "Dimensions": [{"Name": "RuleName", "Value": RECORD_RULE}],
             "Value": 3, "Timestamp": datetime.now(UTC) - timedelta(hours=1)}
        ],
    )  # fmt: skip

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("rds-events")
    assert f"rule {RECORD_RULE} failed to deliver 3 events in the last 24 h" in lines(out)["rds-events"]


def test_an_empty_rds_events_log_group_fails_rds_events_once_the_rule_delivered(world: Deployed) -> None:
    """GIVEN the record rule delivered events in the last day but the log group has received nothing
    WHEN verify runs THEN rds-events fails."""
    world.deploy(outputs={"RdsEventsLogGroupName": f"{EVENTS_GROUP}-empty"})
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=f"{EVENTS_GROUP}-empty")
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="AWS/Events",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": [{"Name": "RuleName", "Value": RECORD_RULE}],
             "Value": 2, "Timestamp": datetime.now(UTC) - timedelta(hours=1)}
        ],
    )  # fmt: skip

    code, out = verify(world.session())

    assert code == 1
    assert f"log group {EVENTS_GROUP}-empty has received no RDS event" in lines(out)["rds-events"]


def test_a_new_stack_whose_rule_delivered_nothing_yet_passes_rds_events_saying_it_is_unproven(
    world: Deployed,
) -> None:
    """GIVEN a stack minutes old: its rules were created after the cluster's creation events, so nothing
    was delivered and the log group is empty WHEN verify runs THEN rds-events passes, saying delivery is
    not proven yet and when to run it again."""
    world.deploy(outputs={"RdsEventsLogGroupName": f"{EVENTS_GROUP}-new"})
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=f"{EVENTS_GROUP}-new")

    code, out = verify(world.session())

    assert code == 0
    assert "delivery is not proven yet" in lines(out)["rds-events"]


def test_a_log_stream_whose_first_page_is_empty_still_counts_its_events() -> None:
    """GIVEN a stream whose first GetLogEvents page is empty with a new forward token, and whose second
    page holds an event (GetLogEvents may answer so) WHEN the check asks whether it holds an event THEN it
    follows the token and says yes; a page whose token comes back unchanged ends the stream."""
    logs = boto3.client("logs", region_name=REGION)
    asked = {"logGroupName": EVENTS_GROUP, "logStreamName": "rds", "limit": 1, "startFromHead": True}
    with Stubber(logs) as stub:
        stub.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"}, asked)
        stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 1, "message": "{}"}], "nextForwardToken": "f/2"},
            asked | {"nextToken": "f/1"},
        )
        assert Verification._stream_holds_an_event(logs, EVENTS_GROUP, "rds")
        stub.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"}, asked)
        stub.add_response(
            "get_log_events", {"events": [], "nextForwardToken": "f/1"}, asked | {"nextToken": "f/1"}
        )
        assert not Verification._stream_holds_an_event(logs, EVENTS_GROUP, "rds")


def test_an_unavailable_proxy_target_fails_proxy_targets(deployed: Deployed) -> None:
    """GIVEN the proxy reports its reader target UNAVAILABLE (CONNECTION_FAILED) WHEN verify runs THEN
    proxy-targets fails naming the target, state and reason."""
    targets = healthy_targets()
    targets[2]["TargetHealth"] = {
        "State": "UNAVAILABLE",
        "Reason": "CONNECTION_FAILED",
        "Description": "timeout",
    }

    code, out = verify(deployed.session(proxy_targets=targets))

    assert code == 1
    assert statuses(out) == all_pass_but("proxy-targets")
    assert "ingest-reader UNAVAILABLE CONNECTION_FAILED timeout" in lines(out)["proxy-targets"]


def test_a_reader_target_no_endpoint_uses_passes_proxy_targets(deployed: Deployed) -> None:
    """GIVEN the proxy reports its reader UNUSED (no read-only endpoint uses it) and the writer AVAILABLE
    WHEN verify runs THEN proxy-targets passes; a writer that is not AVAILABLE would fail it."""
    targets = healthy_targets()
    targets[2]["TargetHealth"] = {"State": "UNUSED"}

    code, out = verify(deployed.session(proxy_targets=targets))

    assert code == 0
    assert statuses(out)["proxy-targets"] == "PASS"


def test_a_customer_value_in_a_trace_fails_tracing(deployed: Deployed) -> None:
    """GIVEN traced code that records its responses (the read back carries the posted document) WHEN
    verify runs THEN tracing fails naming every posted value found in the trace."""
    deployed.stand_in.traces_responses = True

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("tracing")
    line = lines(out)["tracing"]
    fields = "name, email, phone, address, attributes.probe, attributes.nested.items.0"
    assert f"holds posted customer values ({fields})" in line
    assert "POWERTOOLS_TRACER_CAPTURE_RESPONSE=false" in line


def test_a_trace_not_found_in_time_fails_tracing_saying_how_to_look(deployed: Deployed) -> None:
    """GIVEN requests that X-Ray never records (not sampled) WHEN verify runs THEN tracing fails within its
    bound, saying the request may not have been sampled and how to look for the trace later."""
    deployed.stand_in.traced = False

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("tracing")
    line = lines(out)["tracing"]
    assert "not found in X-Ray within 0.5 s: the request may not have been sampled" in line
    assert "aws xray batch-get-traces --trace-ids 1-" in line


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (
            {"SchemaVersion": "ffffffffffffffff"},
            "the migrator applied schema ffffffffffffffff; this checkout's",
        ),
        ({"SchemaVersion": None}, "has no SchemaVersion output"),
    ],
)
def test_a_schema_other_than_this_checkouts_fails_schema(
    world: Deployed, outputs: dict[str, str | None], expected: str
) -> None:
    """GIVEN a stack whose migrator applied another schema, or one deployed before the SchemaVersion output
    existed WHEN verify runs THEN schema fails and says to deploy this checkout."""
    world.deploy(outputs=outputs)

    code, out = verify(world.session())

    assert code == 1
    assert statuses(out) == all_pass_but("schema")
    assert expected in lines(out)["schema"]
    assert "fix: deploy this checkout" in lines(out)["schema"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"Enabled": False}, "is Disabled: nothing drains the queue"),
        ({"BatchSize": 5}, "BatchSize 5, not 10"),
        ({"FunctionResponseTypes": []}, "no ReportBatchItemFailures"),
        (
            {"ScalingConfig": {"MaximumConcurrency": 3}},
            "MaximumConcurrency 3, the parameter ConsumerMaxConcurrency is 5",
        ),
    ],
)
def test_an_event_source_mapping_unlike_the_templates_fails(
    deployed: Deployed, change: dict[str, Any], expected: str
) -> None:
    """GIVEN the consumer's event source mapping disabled or changed by hand WHEN verify runs THEN
    event-source-mapping fails naming what differs from template.yaml."""
    boto3.client("lambda", region_name=REGION).update_event_source_mapping(
        UUID=deployed.mapping_uuid, **change
    )

    code, out = verify(deployed.session())

    assert code == 1
    assert statuses(out) == all_pass_but("event-source-mapping")
    assert expected in lines(out)["event-source-mapping"]


def test_a_check_meeting_an_aws_error_fails_alone(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN credentials without xray:BatchGetTraces WHEN verify runs THEN tracing fails in one line naming
    the call and where the permissions are listed, no traceback, and every other check passes."""
    session = deployed.session()
    xray = boto3.client("xray", region_name=REGION)
    stubber = Stubber(xray)
    stubber.add_client_error("batch_get_traces", "AccessDeniedException", "not authorized", 403)
    stubber.activate()
    session.stubbed["xray"] = xray

    code, out = verify(session)

    assert code == 1
    assert statuses(out) == all_pass_but("tracing")
    assert lines(out)["tracing"].startswith(
        "FAIL tracing: access denied to BatchGetTraces: not authorized -- fix: allow BatchGetTraces to these"
        " credentials (docs/verify.md, Permissions)"
    )
    assert "Traceback" not in capsys.readouterr().err


# ---- a stack that is not usable, no credentials ------------------------------------------------------------


def test_a_missing_stack_fails_and_the_checks_that_need_it_are_skipped(world: Deployed) -> None:
    """GIVEN no stack by that name in the region WHEN verify runs THEN stack fails naming the stack and the
    region, every check that needs it says SKIP, and the exit status is 1."""
    code, out = verify(world.session())

    assert code == 1
    assert statuses(out) == {"credentials": "PASS", "stack": "FAIL"} | {name: "SKIP" for name in CHECKS[2:]}
    assert f"FAIL stack: stack {STACK} not found in region {REGION}" in out
    assert all("the stack is not usable (see stack)" in lines(out)[name] for name in CHECKS[2:])


def test_a_stack_rolled_back_fails_with_how_to_recover(world: Deployed) -> None:
    """GIVEN a stack in ROLLBACK_COMPLETE (its first deploy failed) WHEN verify runs THEN stack fails saying
    so and how to recover, and the checks that need the stack are skipped."""
    world.deploy()

    code, out = verify(world.session(stack_status="ROLLBACK_COMPLETE"))

    assert code == 1
    assert statuses(out) == {"credentials": "PASS", "stack": "FAIL"} | {name: "SKIP" for name in CHECKS[2:]}
    line = lines(out)["stack"]
    assert f"stack {STACK} is ROLLBACK_COMPLETE" in line
    assert "delete the stack, fix, deploy again" in line


def test_no_credentials_is_one_clear_line_and_the_rest_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN no AWS credentials anywhere WHEN verify runs THEN credentials fails in one line telling how to
    get some, every other check is skipped for that reason, no traceback, and the exit status is 1."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    out = io.StringIO()

    code = main(["--region", REGION, "--stack", STACK, "verify"], out=out)

    assert code == 1
    assert out.getvalue().splitlines()[0] == (
        "FAIL credentials: no AWS credentials -- fix: set AWS_PROFILE (or --profile), or run `aws sso login`"
        " (doc: Boto3 Developer Guide, Credentials:"
        " https://boto3.amazonaws.com/v1/documentation/api/latest/guide/credentials.html)"
    )
    assert statuses(out.getvalue()) == {"credentials": "FAIL"} | {name: "SKIP" for name in CHECKS[1:]}
    assert "Traceback" not in capsys.readouterr().err


def test_no_region_is_one_clear_line_and_the_rest_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN credentials but no region (no --region, no AWS_REGION, no profile's) WHEN verify runs THEN
    credentials fails saying how to give a region, the rest is skipped, and the exit status is 1."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    out = io.StringIO()

    code = main(["--stack", STACK, "verify"], out=out)

    assert code == 1
    assert out.getvalue().startswith(
        "FAIL credentials: no AWS region -- fix: pass --region or set AWS_REGION"
    )
    assert statuses(out.getvalue()) == {"credentials": "FAIL"} | {name: "SKIP" for name in CHECKS[1:]}
    assert "Traceback" not in capsys.readouterr().err


def test_a_profile_that_does_not_exist_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a --profile the AWS config does not have WHEN any command runs THEN one line names the
    profile and where to look, no traceback, exit status 1."""
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    code = main(["--profile", "no-such-profile", "--region", REGION, "--stack", STACK, "verify"])

    assert code == 1
    err = capsys.readouterr().err
    assert "no AWS profile no-such-profile: check --profile or AWS_PROFILE" in err
    assert "Traceback" not in err


def test_verify_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--help"])
    assert exit_.value.code == 0
    assert "--record-wait" in capsys.readouterr().out
