"""`python -m ops --stack NAME verify`: after a deploy, check in the account what template.yaml and
openapi.yaml assume. One line per check, PASS or FAIL with the fix and the AWS document behind it
(docs/verify.md says what each check proves and which permissions it needs).

Every check runs on its own: one that fails or meets an error is reported, and the next one runs. A check
that needs what an earlier one found unusable (credentials, the stack, a request sent) says SKIP, which,
like FAIL, makes the exit status 1. Every wait is bounded, and said on stderr while it lasts.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from ingest.schema import schema_version
from ops.progress import Waiter
from ops.stack import OperatorError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import GetLogEventsRequestTypeDef

    from ops.operator import Operator

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
USABLE_STACK_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")

# template.yaml's logical ids of what the checks look at.
API = "IngestApi"
WEB_ACL = "ApiWebAcl"
RECORD_RULE = "RdsEventsRecordRule"
OPERATOR_RULE = "RdsEventsToOperatorRule"  # only with AlarmEmail or AlarmTopicArn
PROXY = "DatabaseProxy"
CONSUMER = "ConsumerFunction"
# The stage SAM adds beside StageName when OpenApiVersion is not set.
SAM_EXTRA_STAGE = "Stage"
# The OAuth scopes of openapi.yaml's operations (template.yaml's UserPoolResourceServer defines them).
WRITE_SCOPE = "customers/write"
READ_SCOPE = "customers/read"
CLIENT_OF_SCOPE = {WRITE_SCOPE: "WriterClientId", READ_SCOPE: "ReaderClientId"}
# The consumer's event source mapping as template.yaml's ConsumerFunction declares it.
CONSUMER_BATCH_SIZE = 10
PARTIAL_BATCH_RESPONSES = "ReportBatchItemFailures"

RECORD_WAIT_S = 20.0  # the consumer commits within seconds while the database is up
TRACE_WAIT_S = 10.0  # X-Ray answers for a trace a few seconds after its segments were sent
POLL_S = 1.0
HTTP_TIMEOUT_S = 10.0
ALARM_HISTORY = timedelta(days=7)
RULE_FAILURES = timedelta(hours=24)

# The documents behind the checks (docs/verify.md quotes what each one says).
DOC_CREDENTIALS = "Boto3 Developer Guide, Credentials: https://boto3.amazonaws.com/v1/documentation/api/latest/guide/credentials.html"
DOC_CALLER = "AWS STS API Reference, GetCallerIdentity: https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"
DOC_STACK = "CloudFormation API Reference, Stack (StackStatus): https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html"
DOC_SAM_STAGE = (
    "AWS SAM Developer Guide, AWS::Serverless::Api OpenApiVersion: "
    "https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-api.html"
)
DOC_STAGE = (
    "API Gateway Developer Guide, Set up CloudWatch logging, X-Ray tracing and throttling for a stage: "
    "https://docs.aws.amazon.com/apigateway/latest/developerguide/stages.html"
)
DOC_WAF = "AWS WAF API Reference, GetWebACLForResource: https://docs.aws.amazon.com/waf/latest/APIReference/API_GetWebACLForResource.html"
DOC_COGNITO = (
    "Amazon Cognito Developer Guide, The token endpoint (client_credentials): "
    "https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html"
)
DOC_ROUND_TRIP = "README, promises 1 and 2; docs/design.md, What the API refuses"
DOC_ALARM_ACTIONS = (
    "AWS re:Post Knowledge Center, Why didn't I receive an SNS notification for my CloudWatch alarm trigger? "
    "https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger"
)
DOC_EMAIL = (
    "Amazon SNS Developer Guide, Email notifications (confirming a subscription): "
    "https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html"
)
DOC_RULE_METRICS = "EventBridge User Guide, Monitoring Amazon EventBridge (FailedInvocations): https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html"
DOC_RDS_EVENTS = (
    "Aurora User Guide, Creating a rule that triggers on an Amazon Aurora event: "
    "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-cloud-watch-events.html"
)
DOC_PROXY = "RDS API Reference, TargetHealth: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_TargetHealth.html"
DOC_XRAY = (
    "X-Ray Developer Guide, Amazon API Gateway active tracing support (sampling rules decide what is "
    "recorded): https://docs.aws.amazon.com/xray/latest/devguide/xray-services-apigateway.html"
)
DOC_TRACER = (
    "Powertools for AWS Lambda (Python), Tracer: capture_response and capture_error: "
    "https://docs.powertools.aws.dev/lambda/python/latest/core/tracer/"
)
DOC_SCHEMA = (
    "CloudFormation User Guide, Custom resource response objects (Data, read with Fn::GetAtt): "
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html"
)
DOC_ESM = (
    "Lambda Developer Guide, Configuring maximum concurrency for Amazon SQS event sources; "
    "Handling errors for an SQS event source (ReportBatchItemFailures): "
    "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html"
)

_REJECTED_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


@dataclass(frozen=True)
class Verdict:
    check: str
    status: str
    detail: str
    fix: str = ""
    doc: str = ""

    def line(self) -> str:
        if self.status == PASS:
            return f"PASS {self.check}: {self.detail}"
        line = f"{self.status} {self.check}: {self.detail}"
        if self.fix:
            line += f" -- fix: {self.fix}"
        return line + (f" (doc: {self.doc})" if self.doc else "")


@dataclass(frozen=True)
class Report:
    verdicts: list[Verdict]

    @property
    def passed(self) -> bool:
        return all(verdict.status == PASS for verdict in self.verdicts)

    def json(self) -> str:
        """The verdicts as a JSON list of {check, status, detail, fix, doc}."""
        return json.dumps([asdict(verdict) for verdict in self.verdicts], indent=2) + "\n"

    def text(self) -> str:
        return "".join(verdict.line() + "\n" for verdict in self.verdicts)


class Failed(Exception):
    """A check's FAIL: what is wrong, how to fix it, and the document that says why."""

    def __init__(self, detail: str, fix: str, doc: str) -> None:
        super().__init__(detail)
        self.detail, self.fix, self.doc = detail, fix, doc


class Skipped(Exception):
    """A check that cannot run because an earlier one found what it needs unusable."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Probe:
    """The unique record the round trip posts: its values are what the tracing check looks for."""

    body: dict[str, Any]
    idempotency_key: str
    trace_id: str

    @property
    def trace_header(self) -> str:
        return f"Root={self.trace_id};Sampled=1"

    def customer_values(self) -> dict[str, str]:
        """Each posted customer value by its path (the customer id is an identifier, not customer data)."""
        values = {key: self.body[key] for key in ("name", "email", "phone", "address")}
        values.update(_leaves(self.body["attributes"], "attributes"))
        return values


def new_probe(now: float) -> Probe:
    run = secrets.token_hex(6)  # names the customer and the request
    secret = secrets.token_hex(8)  # in the values only: a hit in a trace is a posted value, never an id
    digits = "".join(str(secrets.randbelow(10)) for _ in range(10))
    body = {
        "customer_id": f"ops-verify-{run}",
        "name": f"Verify Probe {secret}",
        "email": f"verify.{secret}@example.com",
        "phone": f"+1 {digits}",
        "address": f"{secret} Probe Street",
        "attributes": {"probe": f"value-{secret}", "nested": {"items": [f"item-{secret}"]}},
    }
    # An X-Ray trace id: version 1, the time in 8 hex digits, 96 random bits (X-Ray Developer Guide).
    return Probe(body, f"ops-verify-{run}", f"1-{int(now):08x}-{secrets.token_hex(12)}")


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}.{index}")
    elif isinstance(value, str):
        yield path, value


def http(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Reply:
    """One HTTPS request (certificates verified, bounded); an HTTP error status is an answer too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - the stack's URLs
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S, context=context) as answer:  # noqa: S310
            return Reply(answer.status, answer.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read())


def _fail_all(problems: list[tuple[str, str, str]]) -> None:
    """One FAIL naming every problem found, with each fix and document once."""
    if problems:
        raise Failed(
            "; ".join(problem for problem, _, _ in problems),
            "; ".join(dict.fromkeys(fix for _, fix, _ in problems)),
            "; ".join(dict.fromkeys(doc for _, _, doc in problems)),
        )


def explain(error: Exception, doc: str) -> tuple[str, str, str]:
    """An error met by a check as one line: what happened, the fix, the document."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials",
            "set AWS_PROFILE (or --profile), or run `aws sso login`",
            DOC_CREDENTIALS,
        )
    if isinstance(error, NoRegionError):
        return "no AWS region", "pass --region or set AWS_REGION", DOC_CREDENTIALS
    if isinstance(error, EndpointConnectionError):
        endpoint = error.kwargs.get("endpoint_url", "AWS")
        return f"cannot reach {endpoint}", "check --region (a real region?) and the network", doc
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code in _REJECTED_CREDENTIALS:
            return (
                f"AWS credentials rejected ({code})",
                "refresh them (e.g. `aws sso login`)",
                DOC_CREDENTIALS,
            )
        if code in _ACCESS_DENIED:
            return (
                f"access denied to {error.operation_name}: {message}",
                f"allow {error.operation_name} to these credentials (docs/verify.md, Permissions)",
                doc,
            )
        return (
            f"{error.operation_name}: {code}: {message}",
            "see the message; docs/verify.md explains the check",
            doc,
        )
    if isinstance(error, urllib.error.URLError | OSError):
        return (
            f"HTTP request failed: {getattr(error, 'reason', error)}",
            "check the stack's ApiUrl and TokenEndpoint outputs and the network",
            doc,
        )
    if isinstance(error, OperatorError):
        return str(error), "deploy this checkout's template.yaml (sam build && sam deploy)", doc
    return f"{type(error).__name__}: {error}", "an answer verify does not understand; report it", doc


class Verification:
    """One run of the checks against the stack of `operator`, and what they learn on the way."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator
        options = operator.options
        self.record_wait_s = float(options.record_wait)
        self.trace_wait_s = float(options.trace_wait)
        self.waiter = Waiter(
            interval_s=min(options.poll_interval, POLL_S),
            stream=operator.waiter.stream,
            sleep=operator.waiter.sleep,
            clock=operator.waiter.clock,
        )
        self.partition = "aws"
        self.region = ""
        self.has_credentials = False
        self.stack_usable = False
        self.parameters: dict[str, str] = {}
        self.probe: Probe | None = None  # set once a request carrying its trace id was sent

    def run(self) -> Report:
        return Report([self._judge(name, check, doc) for name, check, doc in CHECKS])

    def _judge(self, name: str, check: Callable[[Verification], str], doc: str) -> Verdict:
        try:
            return Verdict(name, PASS, check(self))
        except Failed as failure:
            return Verdict(name, FAIL, failure.detail, failure.fix, failure.doc)
        except Skipped as skipped:
            return Verdict(name, SKIP, str(skipped))
        except Exception as error:  # one check's error is its FAIL line; the other checks still run
            return Verdict(name, FAIL, *explain(error, doc))

    # ---- what the checks share ------------------------------------------------------------------

    def _require_stack(self) -> None:
        if not self.has_credentials:
            raise Skipped("skipped: no usable AWS credentials (see credentials)")
        if not self.stack_usable:
            raise Skipped("skipped: the stack is not usable (see stack)")

    def _resource(self, logical_id: str) -> str:
        physical = self.operator.stack.resource(logical_id)
        if not physical:
            raise Failed(
                f"stack {self.operator.options.stack} has no resource {logical_id}",
                "deploy this checkout's template.yaml (sam build && sam deploy)",
                DOC_STACK,
            )
        return physical

    def _parameter(self, key: str) -> str:
        if key not in self.parameters:
            raise Failed(
                f"stack {self.operator.options.stack} has no parameter {key}",
                "deploy this checkout's template.yaml (sam build && sam deploy)",
                DOC_STACK,
            )
        return self.parameters[key]

    # ---- 1. credentials ---------------------------------------------------------------------------

    def credentials(self) -> str:
        self.region = self.operator.cloudformation.meta.region_name
        identity = self.operator.sts.get_caller_identity()
        self.partition = identity["Arn"].split(":")[1]
        self.has_credentials = True
        return f"account {identity['Account']} as {identity['Arn']}, region {self.region}"

    # ---- 2. stack ---------------------------------------------------------------------------------

    def stack(self) -> str:
        if not self.has_credentials:
            raise Skipped("skipped: no usable AWS credentials (see credentials)")
        name = self.operator.options.stack
        if not name:
            raise Failed("no stack named", "pass --stack NAME (the name given to sam deploy)", DOC_STACK)
        try:
            found = self.operator.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if "does not exist" not in message:
                raise
            raise Failed(
                f"stack {name} not found in region {self.region}",
                "check --stack and --region; deploy it with `sam deploy`",
                DOC_STACK,
            ) from None
        status = found["StackStatus"]
        if status not in USABLE_STACK_STATUSES:
            reason = found.get("StackStatusReason")
            raise Failed(
                f"stack {name} is {status}" + (f" ({reason})" if reason else ""),
                _stack_fix(name, status),
                DOC_STACK,
            )
        self.parameters = {
            parameter["ParameterKey"]: parameter.get("ParameterValue", "")
            for parameter in found.get("Parameters", [])
        }
        self.stack_usable = True
        changed = found.get("LastUpdatedTime") or found["CreationTime"]
        return f"{name} is {status} (last change {changed:%Y-%m-%d %H:%M} UTC)"

    # ---- 3. api-stage -----------------------------------------------------------------------------

    def api_stage(self) -> str:
        self._require_stack()
        api_id = self._resource(API)
        stage_name = self._parameter("ApiStageName")
        stages = self.operator.apigateway.get_stages(restApiId=api_id).get("item", [])
        names = sorted(stage["stageName"] for stage in stages)
        if names != [stage_name]:
            if SAM_EXTRA_STAGE in names:
                fix = (
                    "set OpenApiVersion: '2.0' on IngestApi in template.yaml and deploy (SAM then makes no"
                    f" '{SAM_EXTRA_STAGE}' stage), or delete it: aws apigateway delete-stage"
                    f" --rest-api-id {api_id} --stage-name {SAM_EXTRA_STAGE}"
                )
                raise Failed(f"API {api_id} has stages {names}, not only {stage_name}", fix, DOC_SAM_STAGE)
            raise Failed(
                f"API {api_id} has stages {names}, expected exactly [{stage_name}]",
                "deploy this checkout's template.yaml; delete stages made by hand"
                " (aws apigateway delete-stage)",
                DOC_STAGE,
            )
        stage = stages[0]
        access_log = stage.get("accessLogSettings", {}).get("destinationArn")
        every_method = stage.get("methodSettings", {}).get("*/*", {})
        rate, burst = every_method.get("throttlingRateLimit"), every_method.get("throttlingBurstLimit")
        expected = (
            float(self._parameter("ApiThrottlingRateLimit")),
            float(self._parameter("ApiThrottlingBurstLimit")),
        )
        redeploy = (
            "deploy this checkout's template.yaml (IngestApi sets TracingEnabled, AccessLogSetting and"
            " MethodSettings); a stage changed by hand shows in `aws cloudformation detect-stack-drift`"
        )
        problems = []
        if not stage.get("tracingEnabled"):
            problems.append((f"stage {stage_name}: X-Ray tracing is off", redeploy, DOC_STAGE))
        if not access_log:
            problems.append((f"stage {stage_name}: no access log destination", redeploy, DOC_STAGE))
        if rate is None or burst is None or (float(rate), float(burst)) != expected:
            problems.append(
                (
                    f"stage {stage_name}: throttling for every method is {rate}/s burst {burst},"
                    f" the parameters say {expected[0]:g}/s burst {expected[1]:g}",
                    redeploy,
                    DOC_STAGE,
                )
            )
        _fail_all(problems)
        detail = (
            f"stage {stage_name} of API {api_id} only: tracing on, access log to {access_log},"
            f" throttling {expected[0]:g}/s burst {expected[1]:g}"
        )
        waf_mode = self._parameter("ApiWafMode")
        if waf_mode == "Off":
            return f"{detail}; no WAF (ApiWafMode Off)"
        return f"{detail}; {self._web_acl_of(api_id, stage_name, waf_mode)}"

    def _web_acl_of(self, api_id: str, stage_name: str, waf_mode: str) -> str:
        # The ARN form WAF takes for a REST API stage (WAF API Reference, AssociateWebACL).
        stage_arn = f"arn:{self.partition}:apigateway:{self.region}::/restapis/{api_id}/stages/{stage_name}"
        web_acl = self.operator.wafv2.get_web_acl_for_resource(ResourceArn=stage_arn).get("WebACL")
        # The physical id of an AWS::WAFv2::WebACL is "name|id|scope".
        expected = self._resource(WEB_ACL)
        expected_id = expected.split("|")[1] if expected.count("|") == 2 else expected
        fix = "deploy this checkout's template.yaml (ApiWebAclAssociation puts ApiWebAcl on the stage)"
        if not web_acl:
            raise Failed(f"ApiWafMode is {waf_mode} but no web ACL protects {stage_arn}", fix, DOC_WAF)
        if expected_id not in (web_acl.get("Id"), web_acl.get("ARN")):
            raise Failed(
                f"{stage_arn} is protected by web ACL {web_acl.get('Name')} ({web_acl.get('Id')}),"
                f" not the stack's {expected}",
                fix,
                DOC_WAF,
            )
        return f"web ACL {web_acl.get('Name')} on the stage ({waf_mode})"

    # ---- 4. api-round-trip ------------------------------------------------------------------------

    def api_round_trip(self) -> str:
        self._require_stack()
        base = self.operator.stack.output("ApiUrl").rstrip("/")
        mode = self._parameter("ApiAuthMode")
        authorize = self._cognito() if mode == "COGNITO" else self._sigv4()
        probe = new_probe(time.time())
        body = json.dumps(probe.body).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": probe.idempotency_key,
            "X-Amzn-Trace-Id": probe.trace_header,
        }
        started = time.monotonic()
        url = f"{base}/customers"
        answer = http("POST", url, body, authorize("POST", url, body, headers, WRITE_SCOPE))
        self.probe = probe  # the API has seen the trace id the tracing check looks for
        if answer.status != 202:
            raise Failed(
                f"POST /customers answered {answer.status}: {answer.body[:300].decode(errors='replace')}",
                "read the body's error; 401/403: the caller's token or policy (docs/deploy.md, Who may do"
                " what); 5xx: python -m ops --stack NAME status and the producer's log",
                DOC_ROUND_TRIP,
            )
        request_id = str(answer.json()["request_id"])
        record_url = f"{base}/records/{request_id}"
        read_headers = {"X-Amzn-Trace-Id": probe.trace_header}

        def committed() -> Reply | None:
            reply = http(
                "GET", record_url, None, authorize("GET", record_url, None, read_headers, READ_SCOPE)
            )
            # 404: not committed yet; 503: the database is not there right now. Both may pass.
            return None if reply.status in (404, 503) else reply

        self.waiter.say(
            f"... reading back record {request_id} for up to {self.record_wait_s:g} s"
            " (the consumer commits it asynchronously)"
        )
        try:
            reply = self.waiter.until(f"record {request_id}", committed, self.record_wait_s)
        except OperatorError:
            raise Failed(
                f"record {request_id} was accepted (202) but not readable within {self.record_wait_s:g} s",
                "look at the consumer: python -m ops --stack NAME status (queue, alarms), the"
                " event-source-mapping check, the ConsumerFunction's log for this request id",
                DOC_ROUND_TRIP,
            ) from None
        record = reply.json() if reply.status == 200 else None
        if record is None:
            raise Failed(
                f"GET /records/{request_id} answered {reply.status}:"
                f" {reply.body[:300].decode(errors='replace')}",
                "read the body's error; 401/403: the reader's token or policy; 5xx: the reader's log",
                DOC_ROUND_TRIP,
            )
        payload = record.get("payload", {})
        differing = sorted(
            key for key in probe.body.keys() | payload.keys() if probe.body.get(key) != payload.get(key)
        )
        if record.get("request_id") != request_id or differing:
            raise Failed(
                f"record {request_id} read back differs from what was posted in:"
                f" {', '.join(differing) or 'request_id'}",
                "a stored record must equal its request: compare the producer's and the reader's version with"
                " this checkout, and the database's JSON column",
                DOC_ROUND_TRIP,
            )
        elapsed = time.monotonic() - started
        return f"POST /customers 202 and record {request_id} read back equal in {elapsed:.1f} s ({mode})"

    def _cognito(self) -> Callable[[str, str, bytes | None, dict[str, str], str], dict[str, str]]:
        """Headers with an access token per scope: the machine clients' client-credentials grant."""
        tokens: dict[str, str] = {}

        def authorize(
            method: str, url: str, body: bytes | None, headers: dict[str, str], scope: str
        ) -> dict[str, str]:
            if scope not in tokens:
                tokens[scope] = self._access_token(scope)
            return headers | {"Authorization": tokens[scope]}  # the raw token (docs/deploy.md)

        return authorize

    def _access_token(self, scope: str) -> str:
        outputs = self.operator.stack
        client_id = outputs.output(CLIENT_OF_SCOPE[scope])
        secret = self.operator.cognito.describe_user_pool_client(
            UserPoolId=outputs.output("UserPoolId"), ClientId=client_id
        )["UserPoolClient"]["ClientSecret"]
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode()
        reply = http(
            "POST",
            outputs.output("TokenEndpoint"),
            form,
            {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        if reply.status != 200:
            raise Failed(
                f"the token endpoint refused client {client_id} scope {scope}: {reply.status}"
                f" {reply.body[:200].decode(errors='replace')}",
                f"the app client must allow the client_credentials grant and {scope}"
                " (template.yaml WriterClient / ReaderClient)",
                DOC_COGNITO,
            )
        return str(reply.json()["access_token"])

    def _sigv4(self) -> Callable[[str, str, bytes | None, dict[str, str], str], dict[str, str]]:
        """Headers signed with the operator's own credentials for execute-api (ApiAuthMode IAM)."""
        found = self.operator.session.get_credentials()
        if found is None:
            raise NoCredentialsError()
        credentials = found.get_frozen_credentials()

        def authorize(
            method: str, url: str, body: bytes | None, headers: dict[str, str], scope: str
        ) -> dict[str, str]:
            request = AWSRequest(method=method, url=url, data=body, headers=headers)
            SigV4Auth(credentials, "execute-api", self.region).add_auth(request)
            return dict(request.headers.items())

        return authorize

    # ---- 5. alarm-delivery ------------------------------------------------------------------------

    def alarm_delivery(self) -> str:
        self._require_stack()
        cloudwatch = self.operator.cloudwatch
        alarms = self.operator.stack.physical_ids_of_type("AWS::CloudWatch::Alarm")
        now = datetime.now(UTC)
        history = cloudwatch.get_paginator("describe_alarm_history")
        failed = [
            item
            for alarm in alarms
            for page in history.paginate(
                AlarmName=alarm, HistoryItemType="Action", StartDate=now - ALARM_HISTORY, EndDate=now
            )
            for item in page.get("AlarmHistoryItems", [])
            if item.get("HistorySummary", "").startswith("Failed")
        ]
        problems = [
            (
                f"alarm {item['AlarmName']} could not notify at {item['Timestamp']:%Y-%m-%d %H:%M}:"
                f" {item['HistorySummary']}",
                "let CloudWatch publish to the topic: its policy (cloudwatch.amazonaws.com, sns:Publish)"
                " and its KMS key (kms:GenerateDataKey*, kms:Decrypt); then test with"
                " `aws cloudwatch set-alarm-state`",
                DOC_ALARM_ACTIONS,
            )
            for item in failed
        ]
        topic = self.operator.stack.outputs.get("AlarmTopicArn")
        if not topic and self._parameter("DatabaseDeletionProtection") == "false":
            # A stack without deletion protection may notify nobody (the template's Rules demand a
            # destination only of a protected one): nothing is delivered, so nothing can fail to be.
            _fail_all(problems)
            return (
                f"no failed notification by the stack's alarms ({len(alarms)}) in {ALARM_HISTORY.days} days;"
                " no alarm destination (AlarmEmail and AlarmTopicArn empty): alarms notify nobody"
            )
        if not topic:
            problems.append(
                (
                    "the stack has no alarm topic: alarms and RDS events reach nobody",
                    "deploy with AlarmEmail=<address> (a topic of the stack's own) or AlarmTopicArn=<topic>",
                    DOC_EMAIL,
                )
            )
        else:
            problems.extend(self._subscription_problems(topic))
        _fail_all(problems)
        return (
            f"no failed notification by the stack's alarms ({len(alarms)}) in {ALARM_HISTORY.days} days;"
            f" {topic}'s subscriptions are confirmed"
        )

    def _subscription_problems(self, topic: str) -> list[tuple[str, str, str]]:
        pages = self.operator.sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic)
        subscriptions = [item for page in pages for item in page.get("Subscriptions", [])]
        # An unconfirmed subscription's ARN is the word PendingConfirmation (SNS ListSubscriptionsByTopic).
        pending = [
            item["Endpoint"] for item in subscriptions if item["SubscriptionArn"] == "PendingConfirmation"
        ]
        address = self.parameters.get("AlarmEmail", "")
        problems = [
            (
                f"{endpoint} has not confirmed its subscription to {topic}",
                f"open the confirmation mail sent to {endpoint} and follow its link (or re-subscribe it:"
                " aws sns subscribe --protocol email)",
                DOC_EMAIL,
            )
            for endpoint in pending
        ]
        if address and address not in {item["Endpoint"] for item in subscriptions}:
            problems.append(
                (
                    f"AlarmEmail {address} is not subscribed to {topic}",
                    "deploy this checkout's template.yaml (AlarmEmailSubscription subscribes it)",
                    DOC_EMAIL,
                )
            )
        if not subscriptions:
            problems.append(
                (
                    f"nobody is subscribed to {topic}",
                    "subscribe the on-call address or pager to it",
                    DOC_EMAIL,
                )
            )
        return problems

    # ---- 6. rds-events ----------------------------------------------------------------------------

    def rds_events(self) -> str:
        self._require_stack()
        rules = [self._resource(RECORD_RULE)]
        notify = self.operator.stack.resource(OPERATOR_RULE)
        rules += [notify] if notify else []
        cloudwatch = self.operator.cloudwatch
        now = datetime.now(UTC)
        problems = []
        for rule in rules:
            failures = self._rule_sum(cloudwatch, "FailedInvocations", rule, now)
            if failures:
                problems.append(
                    (
                        f"rule {rule} failed to deliver {failures:g} events in the last 24 h",
                        "check its target's resource policy (the log group's RdsEventsLogGroupPolicy, the"
                        " topic's policy and KMS key for events.amazonaws.com)",
                        DOC_RULE_METRICS,
                    )
                )
        group = self.operator.stack.output("RdsEventsLogGroupName")
        delivered = self._rule_sum(cloudwatch, "Invocations", rules[0], now)
        holds_events = self._holds_an_event(group)
        if not holds_events and not delivered:
            # The rules name the cluster's instances, so they are created after them and miss the
            # creation events: a new stack's first event may be its first backup, a day later.
            _fail_all(problems)
            return (
                f"rules {', '.join(rules)}: no failed delivery in 24 h; no RDS event since the rules exist"
                f" ({group} is empty), so delivery is not proven yet: run verify again after the first"
                " backup or maintenance event"
            )
        if not holds_events:
            problems.append(
                (
                    f"log group {group} has received no RDS event though rule {rules[0]} delivered"
                    f" {delivered:g} in 24 h",
                    f"check rule {rules[0]}'s target and the log group's resource policy",
                    DOC_RDS_EVENTS,
                )
            )
        _fail_all(problems)
        return f"rules {', '.join(rules)}: no failed delivery in 24 h; {group} holds RDS events"

    @staticmethod
    def _rule_sum(cloudwatch: CloudWatchClient, metric: str, rule: str, now: datetime) -> float:
        """A rule's metric summed over the last 24 h. EventBridge publishes a count only when it is not
        zero: no datapoint is none."""
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Events",
            MetricName=metric,
            Dimensions=[{"Name": "RuleName", "Value": rule}],
            StartTime=now - RULE_FAILURES,
            EndTime=now,
            Period=3600,
            Statistics=["Sum"],
        ).get("Datapoints", [])
        return float(sum(point.get("Sum", 0) for point in points))

    def _holds_an_event(self, group: str) -> bool:
        """Whether the log group's most recent stream holds an event (EventBridge makes the stream with the
        first event it delivers; a stream's lastEventTimestamp may lag, its events do not)."""
        logs = self.operator.logs
        streams = logs.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", descending=True, limit=1
        )
        names = [stream["logStreamName"] for stream in streams["logStreams"]]
        return any(self._stream_holds_an_event(logs, group, name) for name in names)

    @staticmethod
    def _stream_holds_an_event(
        logs: CloudWatchLogsClient, group: str, stream: str, most_pages: int = 10
    ) -> bool:
        """GetLogEvents may answer a page that is empty although events follow: the stream has more while
        nextForwardToken differs from the token sent (GetLogEvents, CloudWatch Logs API Reference)."""
        request: GetLogEventsRequestTypeDef = {
            "logGroupName": group,
            "logStreamName": stream,
            "limit": 1,
            "startFromHead": True,
        }
        for _ in range(most_pages):
            page = logs.get_log_events(**request)
            if page["events"]:
                return True
            if page.get("nextForwardToken") in (None, request.get("nextToken")):
                return False
            request["nextToken"] = page["nextForwardToken"]
        return False

    # ---- 7. proxy-targets -------------------------------------------------------------------------

    def proxy_targets(self) -> str:
        self._require_stack()
        proxy = self._resource(PROXY)
        pages = self.operator.rds.get_paginator("describe_db_proxy_targets").paginate(DBProxyName=proxy)
        targets = [target for page in pages for target in page.get("Targets", [])]
        # Instances report their health; the tracked cluster entry of an Aurora target group may not. A
        # reader no read-only endpoint uses may be UNUSED (RDS API Reference, TargetHealth): only the
        # writer must be AVAILABLE, and the others must not be failing.
        judged = [target for target in targets if target.get("TargetHealth", {}).get("State")]
        unhealthy = [
            target
            for target in judged
            if target["TargetHealth"]["State"] != "AVAILABLE"
            and not (target.get("Role") == "READ_ONLY" and target["TargetHealth"]["State"] == "UNUSED")
        ]
        fix = (
            "see the reason: UNREACHABLE or CONNECTION_FAILED: the proxy's and the cluster's security groups"
            " (3306); AUTH_FAILURE: the proxy role's rds-db:connect on the cluster's dbuser ARNs, or users"
            " the schema migrator has not created yet; a new stack's targets take minutes"
        )
        if unhealthy:
            described = ", ".join(
                " ".join(
                    str(part)
                    for part in (
                        target.get("RdsResourceId"),
                        target["TargetHealth"]["State"],
                        target["TargetHealth"].get("Reason"),
                        target["TargetHealth"].get("Description"),
                    )
                    if part
                )
                for target in unhealthy
            )
            raise Failed(f"proxy {proxy}: {described}", fix, DOC_PROXY)
        if not any(target.get("Role") == "READ_WRITE" for target in judged):
            raise Failed(f"proxy {proxy} reports no writer's health", fix, DOC_PROXY)
        names = ", ".join(str(target.get("RdsResourceId")) for target in judged)
        return f"proxy {proxy}: {names} AVAILABLE"

    # ---- 8. tracing -------------------------------------------------------------------------------

    def tracing(self) -> str:
        self._require_stack()
        if self.probe is None:
            raise Skipped("skipped: no request was sent (see api-round-trip)")
        trace_id = self.probe.trace_id
        self.waiter.say(f"... looking for X-Ray trace {trace_id} for up to {self.trace_wait_s:g} s")
        documents = self._trace_documents(trace_id)
        if not documents:
            raise Failed(
                f"trace {trace_id} not found in X-Ray within {self.trace_wait_s:g} s: the request may not"
                " have been sampled, or its segments are still arriving",
                f"look again in a minute: aws xray batch-get-traces --trace-ids {trace_id}; if it never"
                " appears, check the stage's tracing (api-stage), the functions' Tracing: Active and X-Ray's"
                " sampling rules",
                DOC_XRAY,
            )
        found = [
            path
            for path, value in self.probe.customer_values().items()
            if any(value in document for document in documents)
        ]
        if found:
            raise Failed(
                f"trace {trace_id} holds posted customer values ({', '.join(found)})",
                "stop traced code from recording payloads: Tracer(capture_response=False) or"
                " POWERTOOLS_TRACER_CAPTURE_RESPONSE=false (and CAPTURE_ERROR) on the functions; no customer"
                " data in put_metadata or put_annotation",
                DOC_TRACER,
            )
        return f"trace {trace_id}: {len(documents)} segments, none holds a posted customer value"

    def _trace_documents(self, trace_id: str) -> list[str]:
        """The segment documents of the trace; segments arrive one by one, so two reads that agree."""
        xray = self.operator.xray
        seen: list[str] = []

        def settled() -> list[str] | None:
            pages = xray.get_paginator("batch_get_traces").paginate(TraceIds=[trace_id])
            traces = [trace for page in pages for trace in page.get("Traces", [])]
            documents = [segment["Document"] for trace in traces for segment in trace.get("Segments", [])]
            if documents and len(documents) == len(seen):
                return documents
            seen[:] = documents
            return None

        try:
            return self.waiter.until(f"X-Ray trace {trace_id}", settled, self.trace_wait_s)
        except OperatorError:
            return seen  # what arrived in time, if anything

    # ---- 9. schema --------------------------------------------------------------------------------

    def schema(self) -> str:
        self._require_stack()
        deployed = self.operator.stack.outputs.get("SchemaVersion")
        local = schema_version()
        if deployed is None:
            raise Failed(
                f"stack {self.operator.options.stack} has no SchemaVersion output: it was deployed from"
                " an older template",
                "deploy this checkout (sam build && sam deploy)",
                DOC_SCHEMA,
            )
        if deployed != local:
            raise Failed(
                f"the migrator applied schema {deployed}; this checkout's schema.sql is {local}",
                "deploy this checkout (a new layer reruns the migrator), or check out the deployed version",
                DOC_SCHEMA,
            )
        return f"the migrator applied schema {local}, this checkout's schema.sql"

    # ---- 10. event-source-mapping -----------------------------------------------------------------

    def event_source_mapping(self) -> str:
        self._require_stack()
        function = self._resource(CONSUMER)
        queue_arn = self.operator.sqs.get_queue_attributes(
            QueueUrl=self.operator.stack.output("QueueUrl"), AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        pages = self.operator.lambda_.get_paginator("list_event_source_mappings").paginate(
            FunctionName=function, EventSourceArn=queue_arn
        )
        mappings = [mapping for page in pages for mapping in page.get("EventSourceMappings", [])]
        redeploy = "deploy this checkout's template.yaml (ConsumerFunction's CustomerQueueBatches event)"
        if len(mappings) != 1:
            raise Failed(
                f"{len(mappings)} event source mappings from {queue_arn} to {function}, expected 1",
                redeploy + "; delete mappings made by hand (aws lambda delete-event-source-mapping)",
                DOC_ESM,
            )
        mapping = mappings[0]
        uuid = mapping["UUID"]
        concurrency = int(self._parameter("ConsumerMaxConcurrency"))
        maximum = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
        problems = []
        if mapping.get("State") != "Enabled":
            problems.append(
                (
                    f"mapping {uuid} is {mapping.get('State')}: nothing drains the queue",
                    f"aws lambda update-event-source-mapping --uuid {uuid} --enabled",
                    DOC_ESM,
                )
            )
        if mapping.get("BatchSize") != CONSUMER_BATCH_SIZE:
            problems.append(
                (
                    f"mapping {uuid}: BatchSize {mapping.get('BatchSize')}, not {CONSUMER_BATCH_SIZE}",
                    redeploy,
                    DOC_ESM,
                )
            )
        if PARTIAL_BATCH_RESPONSES not in mapping.get("FunctionResponseTypes", []):
            problems.append(
                (
                    f"mapping {uuid}: no {PARTIAL_BATCH_RESPONSES}, so one failed record retries its"
                    " whole batch",
                    redeploy,
                    DOC_ESM,
                )
            )
        if maximum != concurrency:
            problems.append(
                (
                    f"mapping {uuid}: MaximumConcurrency {maximum}, the parameter ConsumerMaxConcurrency is"
                    f" {concurrency}",
                    redeploy,
                    DOC_ESM,
                )
            )
        _fail_all(problems)
        return (
            f"mapping {uuid} from the queue to {function}: Enabled, batch {CONSUMER_BATCH_SIZE},"
            f" {PARTIAL_BATCH_RESPONSES}, maximum concurrency {concurrency}"
        )


def _stack_fix(name: str, status: str) -> str:
    events = f"read why in its events (aws cloudformation describe-stack-events --stack-name {name})"
    if status.endswith("_IN_PROGRESS"):
        return "wait until the operation in progress ends, then run verify again"
    if status == "ROLLBACK_COMPLETE":
        return f"the first deploy failed and was rolled back: {events}, delete the stack, fix, deploy again"
    if status == "UPDATE_ROLLBACK_COMPLETE":
        return f"the last deploy was rolled back (the previous version runs): {events}, fix, deploy again"
    if status == "UPDATE_ROLLBACK_FAILED":
        return f"{events}; fix the resource, then aws cloudformation continue-update-rollback"
    return f"{events}, fix the cause and deploy again"


CHECKS: tuple[tuple[str, Callable[[Verification], str], str], ...] = (
    ("credentials", Verification.credentials, DOC_CALLER),
    ("stack", Verification.stack, DOC_STACK),
    ("api-stage", Verification.api_stage, DOC_STAGE),
    ("api-round-trip", Verification.api_round_trip, DOC_ROUND_TRIP),
    ("alarm-delivery", Verification.alarm_delivery, DOC_ALARM_ACTIONS),
    ("rds-events", Verification.rds_events, DOC_RULE_METRICS),
    ("proxy-targets", Verification.proxy_targets, DOC_PROXY),
    ("tracing", Verification.tracing, DOC_XRAY),
    ("schema", Verification.schema, DOC_SCHEMA),
    ("event-source-mapping", Verification.event_source_mapping, DOC_ESM),
)


def run(operator: Operator) -> Report:
    """The `verify` subcommand."""
    return Verification(operator).run()
