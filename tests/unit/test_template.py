"""Invariants of template.yaml that the zero-loss promise depends on, plus cfn-lint and the events.

The template is read as local/template.py reads it for the local stack (short tags in long form,
openapi.yaml inlined), so these tests check what the local stack runs and CloudFormation deploys.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from typing import Any

import pytest

from ingest.config import ReaderSettings
from ingest.connection import worst_case_s
from ingest.errors import API_GATEWAY_TIMEOUT_S, RETRY_AFTER_SECONDS
from local.template import TEMPLATE_PATH, Template, TemplateError, shared_values
from tests.template_checks import TRACING_AND_VPC_ACTIONS, run_cfn_lint

ROOT = TEMPLATE_PATH.parent
EVENTS = ROOT / "events"

# Statements allowed Resource "*": besides tracing and the VPC attachment (tests/template_checks.py).
STAR_ALLOWED_ACTIONS = TRACING_AND_VPC_ACTIONS | {"rds:DescribeEvents"}  # the demo console's timeline


TEMPLATE = Template()
SHARED = TEMPLATE.shared_values()
# The stack as deployed with the defaults (the demo console Disabled: tests/unit/test_template_console.py).
DEFAULT_STACK = TEMPLATE.rendered()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return TEMPLATE.document


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def props(resources: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return resources[logical_id]["Properties"]


def resolve_number(value: Any) -> int:
    """A literal, a !Ref to a parameter (its Default) or a !FindInMap, as the local stack resolves it."""
    return int(TEMPLATE.resolve(value))


def function_timeout(template: dict[str, Any], resources: dict[str, Any], logical_id: str) -> int:
    timeout = props(resources, logical_id).get("Timeout", template["Globals"]["Function"].get("Timeout", 3))
    return resolve_number(timeout)


# --- queues -----------------------------------------------------------------------------------------


def test_queue_and_dead_letter_queue_are_fifo_with_fourteen_day_retention(resources):
    for logical_id in ("CustomerQueue", "CustomerDeadLetterQueue"):
        queue = props(resources, logical_id)
        assert queue["FifoQueue"] is True
        assert queue["MessageRetentionPeriod"] == 1209600
        assert queue["ContentBasedDeduplication"] is False
        assert queue["DeduplicationScope"] == "messageGroup"
        assert queue["FifoThroughputLimit"] == "perMessageGroupId"
        assert queue["SqsManagedSseEnabled"] is True


def test_redrive_policy_sends_to_the_fifo_dlq_after_the_most_receives_sqs_allows(resources):
    policy = props(resources, "CustomerQueue")["RedrivePolicy"]
    # The budget of a database outage (promise 6); SQS allows 1 to 1,000.
    assert policy["maxReceiveCount"] == {"Fn::FindInMap": ["Shared", "Queue", "MaxReceiveCount"]}
    assert resolve_number(policy["maxReceiveCount"]) == SHARED.max_receive_count == 1000
    assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": ["CustomerDeadLetterQueue", "Arn"]}


def test_the_consumer_parks_poison_after_25_receives_long_before_the_redrive_policy(resources):
    env = props(resources, "ConsumerFunction")["Environment"]["Variables"]
    assert env["POISON_RECEIVE_COUNT"] == {"Fn::FindInMap": ["Shared", "Queue", "PoisonReceiveCount"]}
    assert SHARED.poison_receive_count == 25  # README promise 5
    assert SHARED.poison_receive_count < SHARED.max_receive_count
    assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": "CustomerDeadLetterQueue"}


def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(template, resources):
    visibility = resolve_number(props(resources, "CustomerQueue")["VisibilityTimeout"])
    assert function_timeout(template, resources, "ConsumerFunction") == 30
    assert visibility >= 6 * function_timeout(template, resources, "ConsumerFunction")


def test_a_one_hour_outage_sends_nothing_to_the_dead_letter_queue(template, resources):
    queue = props(resources, "CustomerQueue")
    visibility = resolve_number(queue["VisibilityTimeout"])
    receives = resolve_number(queue["RedrivePolicy"]["maxReceiveCount"])
    # Without the consumer's backoff (e.g. the ChangeMessageVisibility call failed too).
    assert visibility * receives >= 3600
    # With it: RETRY_BASE_SECONDS doubling per receive up to RETRY_MAX_SECONDS.
    env = props(resources, "ConsumerFunction")["Environment"]["Variables"]
    base, cap = int(env["RETRY_BASE_SECONDS"]), int(env["RETRY_MAX_SECONDS"])
    assert sum(min(base * 2 ** (n - 1), cap) for n in range(1, receives + 1)) >= 3600


def test_queue_messages_survive_replacement_and_stack_deletion(resources):
    for logical_id in ("CustomerQueue", "CustomerDeadLetterQueue"):
        assert resources[logical_id]["DeletionPolicy"] == "Retain"
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain"


def test_event_source_mapping_batches_of_ten_with_partial_failures_and_a_concurrency_cap(template, resources):
    events = props(resources, "ConsumerFunction")["Events"]
    (mapping,) = (event["Properties"] for event in events.values() if event["Type"] == "SQS")
    assert mapping["Queue"] == {"Fn::GetAtt": ["CustomerQueue", "Arn"]}
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "ConsumerMaxConcurrency"}
    parameter = template["Parameters"]["ConsumerMaxConcurrency"]
    assert parameter["Default"] == 5
    assert parameter["MinValue"] >= 2  # the service minimum
    assert "ReservedConcurrentExecutions" not in props(resources, "ConsumerFunction")


# --- database and proxy -----------------------------------------------------------------------------


def test_cluster_is_encrypted_iam_enabled_backed_up_and_manages_its_password(resources):
    cluster = props(resources, "DatabaseCluster")
    assert cluster["Engine"] == "aurora-mysql"
    assert cluster["StorageEncrypted"] is True
    assert cluster["EnableIAMDatabaseAuthentication"] is True
    assert cluster["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in cluster
    assert cluster["BackupRetentionPeriod"] == {"Ref": "DatabaseBackupRetentionDays"}
    assert resources["DatabaseCluster"]["DeletionPolicy"] == "Snapshot"


def test_writer_and_reader_are_in_different_availability_zones(resources):
    zones = [props(resources, name)["AvailabilityZone"] for name in ("WriterInstance", "ReaderInstance")]
    assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]
    assert resources["ReaderInstance"]["DependsOn"] == "WriterInstance"


def test_proxy_requires_tls_and_iam_for_every_user(resources):
    """GIVEN the proxy THEN clients need TLS and an IAM token, and the proxy logs in to Aurora with IAM
    too, for every user it serves: it has no secret (no Auth entry) whose scheme could compete."""
    proxy = props(resources, "DatabaseProxy")
    assert proxy["RequireTLS"] is True
    assert proxy["DefaultAuthScheme"] == "IAM_AUTH"
    assert "Auth" not in proxy
    pool = props(resources, "DatabaseProxyTargetGroup")["ConnectionPoolConfigurationInfo"]
    # A client waiting for a database connection gives up well before the consumer's 30 s timeout.
    assert pool["ConnectionBorrowTimeout"] < int(props(resources, "ConsumerFunction")["Timeout"])
    assert 0 < pool["MaxConnectionsPercent"] <= 100


def test_security_groups_chain_functions_to_proxy_to_cluster_on_3306_only():
    resources = DEFAULT_STACK["Resources"]
    ingress = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
    }
    into_cluster = [rule for rule in ingress.values() if rule["GroupId"] == {"Ref": "DatabaseSecurityGroup"}]
    # The proxy, and the schema migrator's master login (the proxy does not serve the master user)
    assert {rule["SourceSecurityGroupId"]["Ref"] for rule in into_cluster} == {
        "ProxySecurityGroup",
        "MigratorSecurityGroup",
    }
    assert all(
        (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 3306, 3306) for rule in into_cluster
    )
    into_proxy = [rule for rule in ingress.values() if rule["GroupId"] == {"Ref": "ProxySecurityGroup"}]
    assert {rule["SourceSecurityGroupId"]["Ref"] for rule in into_proxy} == {
        "ConsumerSecurityGroup",
        "ReaderSecurityGroup",
    }
    assert all((rule["FromPort"], rule["ToPort"]) == (3306, 3306) for rule in into_proxy)
    for logical_id in (
        "DatabaseSecurityGroup",
        "ProxySecurityGroup",
        "ConsumerSecurityGroup",
        "ReaderSecurityGroup",
    ):
        assert "SecurityGroupIngress" not in props(resources, logical_id)


def _egress_of(resources: dict[str, Any], group: str) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::EC2::SecurityGroupEgress"
        and resource["Properties"]["GroupId"] == {"Ref": group}
    ]


def test_the_reader_has_a_security_group_of_its_own_that_reaches_the_proxy_only():
    resources = DEFAULT_STACK["Resources"]
    # GIVEN the reader's network placement
    groups = props(resources, "ReaderFunction")["VpcConfig"]["SecurityGroupIds"]
    # THEN it is alone in its group, whose only way out is MySQL to the proxy
    assert groups == [{"Ref": "ReaderSecurityGroup"}]
    (egress,) = _egress_of(resources, "ReaderSecurityGroup")
    assert egress["DestinationSecurityGroupId"] == {"Ref": "ProxySecurityGroup"}
    assert (egress["FromPort"], egress["ToPort"]) == (3306, 3306)
    # AND only the consumer (SQS) and the schema migrator (Secrets Manager) may reach the endpoints
    into_endpoints = [
        resource["Properties"]["SourceSecurityGroupId"]
        for resource in resources.values()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
        and resource["Properties"]["GroupId"] == {"Ref": "EndpointSecurityGroup"}
    ]
    assert into_endpoints == [{"Ref": "ConsumerSecurityGroup"}, {"Ref": "MigratorSecurityGroup"}]
    assert props(resources, "ConsumerFunction")["VpcConfig"]["SecurityGroupIds"] == [
        {"Ref": "ConsumerSecurityGroup"}
    ]


def test_a_migrator_that_never_answers_fails_the_deploy_in_minutes(template, resources):
    # GIVEN the schema custom resource and the migrator's own timeout
    timeout_s = resolve_number(resources["SchemaMigration"]["Properties"]["ServiceTimeout"])
    # THEN CloudFormation stops waiting soon after the migrator must have answered, not after an hour
    assert function_timeout(template, resources, "SchemaMigratorFunction") < timeout_s <= 15 * 60


def test_custom_resource_waits_for_the_database_and_reruns_on_a_new_layer(resources):
    migration = resources["SchemaMigration"]
    assert migration["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["SchemaMigratorFunction", "Arn"]}
    assert migration["Properties"]["SchemaLayerVersion"] == {"Ref": "SharedLayer"}
    # The writer it logs in to, the endpoint it reads the master secret through, the route of its reply
    for dependency in ("WriterInstance", "SecretsManagerEndpoint", "S3GatewayEndpoint"):
        assert dependency in migration["DependsOn"]


# --- functions --------------------------------------------------------------------------------------


def test_every_function_uses_the_shared_layer_and_app_handler(template, resources):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    assert globals_["Handler"] == "app.handler"
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]
    code = {
        "ProducerFunction": "functions/producer/",
        "ConsumerFunction": "functions/consumer/",
        "ReaderFunction": "functions/reader/",
        "SchemaMigratorFunction": "functions/migrator/",
    }
    for logical_id, code_uri in code.items():
        assert props(resources, logical_id)["CodeUri"] == code_uri
        assert (ROOT / code_uri).is_dir()
    layer = resources["SharedLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/shared/"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}


def test_producer_is_outside_the_vpc_and_database_functions_inside(resources):
    assert "VpcConfig" not in props(resources, "ProducerFunction")
    for logical_id in ("ConsumerFunction", "ReaderFunction", "SchemaMigratorFunction"):
        assert props(resources, logical_id)["VpcConfig"]["SubnetIds"]


def test_database_functions_reach_the_proxy_with_iam_and_verified_tls(resources):
    for logical_id in ("ConsumerFunction", "ReaderFunction"):
        env = props(resources, logical_id)["Environment"]["Variables"]
        assert env["DB_HOST"] == {"Fn::GetAtt": ["DatabaseProxy", "Endpoint"]}
        assert env["DB_AUTH"] == "iam"
        assert env["DB_TLS"] == "verify"
        assert env["DB_NAME"] == {"Fn::FindInMap": ["Shared", "Database", "Name"]}
    assert props(resources, "ConsumerFunction")["Environment"]["Variables"]["DB_USER"] == {
        "Ref": "AppDatabaseUser"
    }
    assert props(resources, "ReaderFunction")["Environment"]["Variables"]["DB_USER"] == {
        "Ref": "ReaderDatabaseUser"
    }


# --- IAM --------------------------------------------------------------------------------------------


def _statements(resources: dict[str, Any]):
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        assert "ManagedPolicyArns" not in resource["Properties"] or logical_id == "ApiGatewayCloudWatchRole"
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield logical_id, statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_statement_has_a_star_resource_unless_the_service_allows_nothing_narrower(resources):
    statements = list(_statements(resources))
    assert statements
    for logical_id, statement in statements:
        if "*" in _as_list(statement["Resource"]):
            assert set(_as_list(statement["Action"])) <= STAR_ALLOWED_ACTIONS, (logical_id, statement)
        for action in _as_list(statement["Action"]):
            assert not action.endswith("*"), (logical_id, action)


def test_functions_have_their_own_roles_and_no_sam_policies(resources):
    for logical_id in ("ProducerFunction", "ConsumerFunction", "ReaderFunction", "SchemaMigratorFunction"):
        function = props(resources, logical_id)
        assert function["Role"] == {"Fn::GetAtt": [f"{logical_id}Role", "Arn"]}
        assert "Policies" not in function


def _actions(resources: dict[str, Any], role: str) -> dict[str, list[Any]]:
    granted: dict[str, list[Any]] = {}
    for logical_id, statement in _statements(resources):
        if logical_id == role:
            for action in _as_list(statement["Action"]):
                granted.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return granted


def test_producer_may_only_send_to_the_queue(resources):
    granted = _actions(resources, "ProducerFunctionRole")
    assert granted["sqs:SendMessage"] == [{"Fn::GetAtt": ["CustomerQueue", "Arn"]}]
    assert not any(action.startswith(("rds-db:", "secretsmanager:")) for action in granted)


def test_database_logins_are_scoped_to_the_proxy_dbuser_arns(resources):
    proxy_id = {"Fn::Select": [6, {"Fn::Split": [":", {"Fn::GetAtt": ["DatabaseProxy", "DBProxyArn"]}]}]}
    expected_user = {
        "ConsumerFunctionRole": "AppDatabaseUser",
        "ReaderFunctionRole": "ReaderDatabaseUser",
    }
    for role, user in expected_user.items():
        (resource,) = _actions(resources, role)["rds-db:connect"]
        arn, variables = resource["Fn::Sub"]
        assert arn.endswith(f":dbuser:${{ProxyId}}/${{{user}}}")
        assert arn.startswith("arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:")
        assert variables == {"ProxyId": proxy_id}
    for role in ("ProducerFunctionRole", "SchemaMigratorFunctionRole"):
        assert "rds-db:connect" not in _actions(resources, role)


def test_consumer_polls_and_backs_off_on_its_queue_and_sends_only_to_the_dead_letter_queue(resources):
    granted = _actions(resources, "ConsumerFunctionRole")
    queue = [{"Fn::GetAtt": ["CustomerQueue", "Arn"]}]
    for action in (
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    ):
        assert granted[action] == queue
    assert granted["sqs:SendMessage"] == [{"Fn::GetAtt": ["CustomerDeadLetterQueue", "Arn"]}]


def test_only_the_migrator_reads_the_master_secret_and_logs_in_with_it_straight_to_the_cluster(resources):
    """GIVEN the master user's RDS-managed secret THEN the schema migrator alone may read it, through an
    endpoint that allows that one call on that one secret, and logs in with it to the cluster's writer;
    the proxy and the other functions never touch it, and the two function users have no password at all."""
    master_secret = {"Fn::GetAtt": ["DatabaseCluster", "MasterUserSecret.SecretArn"]}
    assert _actions(resources, "SchemaMigratorFunctionRole")["secretsmanager:GetSecretValue"] == [
        master_secret
    ]
    for role in ("ProducerFunctionRole", "ConsumerFunctionRole", "ReaderFunctionRole", "DatabaseProxyRole"):
        assert not any(action.startswith("secretsmanager:") for action in _actions(resources, role))
    assert not [r for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret"]
    (endpoint_statement,) = props(resources, "SecretsManagerEndpoint")["PolicyDocument"]["Statement"]
    assert (endpoint_statement["Action"], endpoint_statement["Resource"]) == (
        "secretsmanager:GetSecretValue",
        master_secret,
    )
    migrator = props(resources, "SchemaMigratorFunction")["Environment"]["Variables"]
    assert migrator["DB_HOST"] == {"Fn::GetAtt": ["DatabaseCluster", "Endpoint.Address"]}
    assert (migrator["DB_AUTH"], migrator["DB_SECRET_ARN"], migrator["DB_TLS"]) == (
        "secret",
        master_secret,
        "verify",
    )
    assert "DB_PASSWORD" not in migrator
    # End-to-end IAM: the proxy itself logs in as the two function users with a token.
    app, reader = _actions(resources, "DatabaseProxyRole")["rds-db:connect"]
    assert app["Fn::Sub"].endswith(":dbuser:${DatabaseCluster.DBClusterResourceId}/${AppDatabaseUser}")
    assert reader["Fn::Sub"].endswith(":dbuser:${DatabaseCluster.DBClusterResourceId}/${ReaderDatabaseUser}")


# --- parameters, API, outputs -------------------------------------------------------------------------


def test_every_parameter_is_described_grouped_and_labelled(template):
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [name for group in interface["ParameterGroups"] for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])
    assert len(grouped) == len(set(grouped))
    for name, parameter in template["Parameters"].items():
        assert parameter.get("Description", "").strip(), name
        assert name in interface["ParameterLabels"], name


# Which permission each method requires: the Cognito scope, and the IAM policy that grants it.
METHOD_PERMISSIONS = {
    ("/customers", "post"): ("customers/write", "ApiWriterPolicy"),
    ("/customers/{customer_id}", "get"): ("customers/read", "ApiReaderPolicy"),
    ("/records/{request_id}", "get"): ("customers/read", "ApiReaderPolicy"),
}


def _ingest_paths(body: dict[str, Any]) -> dict[str, Any]:
    """The paths of the ingest API itself; the demo console's exist under a condition of their own."""
    return {path: item for path, item in body["paths"].items() if not path.startswith("/console")}


def test_api_uses_cognito_by_default_and_iam_by_parameter(template):
    assert template["Parameters"]["ApiAuthMode"]["Default"] == "COGNITO"
    assert template["Parameters"]["ApiAuthMode"]["AllowedValues"] == ["COGNITO", "IAM"]
    assert template["Conditions"]["UseCognitoAuth"] == {"Fn::Equals": [{"Ref": "ApiAuthMode"}, "COGNITO"]}
    assert template["Conditions"]["UseIamAuth"] == {"Fn::Equals": [{"Ref": "ApiAuthMode"}, "IAM"]}
    body = TEMPLATE.api_definition()
    assert set(body["securityDefinitions"]["Fn::If"][1]) == {"CognitoAuthorizer"}
    assert set(body["securityDefinitions"]["Fn::If"][2]) == {"sigv4"}
    for path in _ingest_paths(body).values():
        for operation in path.values():
            condition, _, iam = operation["security"]["Fn::If"]
            assert (condition, iam) == ("UseCognitoAuth", [{"sigv4": []}])
    post = body["paths"]["/customers"]["post"]
    assert post["x-amazon-apigateway-request-validator"] == "body"
    assert body["x-amazon-apigateway-request-validators"]["body"]["validateRequestBody"] is True


def test_stage_throttles_traces_and_logs_access(resources):
    api = props(resources, "IngestApi")
    assert api["TracingEnabled"] is True
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    (setting,) = api["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert setting["DataTraceEnabled"] is False
    assert "RetentionInDays" in props(resources, "ApiAccessLogGroup")


def test_alarms_watch_the_dead_letter_queue_backlog_age_and_consumer_errors(resources):
    dlq = props(resources, "DeadLetterQueueAlarm")
    assert (dlq["MetricName"], dlq["Threshold"], dlq["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible",
        0,
        "GreaterThanThreshold",
    )
    assert dlq["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["CustomerDeadLetterQueue", "QueueName"]}
    assert props(resources, "QueueAgeAlarm")["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert props(resources, "ConsumerErrorsAlarm")["Dimensions"][0]["Value"] == {"Ref": "ConsumerFunction"}


def test_outputs_give_what_an_operator_needs(template):
    for name in (
        "ApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "ProxyEndpoint",
    ):
        assert name in template["Outputs"], name
    assert "DatabaseClusterId" in template["Outputs"]
    assert "start-message-move-task" in template["Outputs"]["RedriveCommand"]["Value"]["Fn::Sub"]


# --- tools and files --------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing():
    result = run_cfn_lint(TEMPLATE_PATH)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_nothing_with_the_api_definition_inlined(tmp_path):
    # cfn-lint does not read AWS::Include files: lint the template as CloudFormation processes it, so
    # openapi.yaml's references (functions, user pool, conditions) are checked too.
    processed = tmp_path / "template.json"
    processed.write_text(json.dumps(TEMPLATE.document))
    result = run_cfn_lint(processed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_definition_is_included_from_its_own_file(template):
    # GIVEN the template as written (CloudFormation's AWS::Include, before it is processed)
    raw = TEMPLATE_PATH.read_text()
    # THEN IngestApi includes openapi.yaml, and the loaded template holds that file's definition
    assert "Location: openapi.yaml" in raw
    assert TEMPLATE.api_definition()["swagger"] == "2.0"
    assert set(_ingest_paths(TEMPLATE.api_definition())) == {
        "/customers",
        "/customers/{customer_id}",
        "/records/{request_id}",
    }


def test_an_included_file_with_short_tags_is_refused(tmp_path):
    # GIVEN a template whose included snippet uses a short tag, which CloudFormation does not support there
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Api:\n    Properties:\n      DefinitionBody:\n        Fn::Transform:\n"
        "          Name: AWS::Include\n          Parameters:\n            Location: api.yaml\n"
    )
    (tmp_path / "api.yaml").write_text("info:\n  title: !Sub '${AWS::StackName}'\n")
    # WHEN it is loaded THEN the loader says so instead of reading what would fail to deploy
    with pytest.raises(TemplateError, match="short tags"):
        Template(tmp_path / "template.yaml")


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda path: path.name)
def test_every_sample_event_is_json(path):
    assert isinstance(json.loads(path.read_text()), dict)


def test_every_sample_event_is_documented_and_every_documented_one_exists():
    names = {path.name for path in EVENTS.glob("*.json")}
    documented = {
        line.split("|")[1].strip()
        for line in (EVENTS / "README.md").read_text().splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().endswith(".json")
    }
    assert names == documented


# --- who may do what ----------------------------------------------------------------------------------


def test_each_method_requires_its_own_scope_and_nothing_else(resources):
    # GIVEN the API definition and the user pool's resource server
    body = TEMPLATE.api_definition()
    server = props(resources, "UserPoolResourceServer")
    defined = {f"{server['Identifier']}/{scope['ScopeName']}" for scope in server["Scopes"]}
    operations = {(path, method) for path, item in _ingest_paths(body).items() for method in item}
    # THEN every operation is listed, and with Cognito each one demands exactly one scope the pool defines:
    # writing for POST, reading for the GETs (API Gateway: AuthorizationScopes, an access token's scope)
    assert operations == set(METHOD_PERMISSIONS)
    for (path, method), (scope, _) in METHOD_PERMISSIONS.items():
        cognito = body["paths"][path][method]["security"]["Fn::If"][1]
        assert cognito == [{"CognitoAuthorizer": [scope]}], (path, method)
        assert scope in defined
    assert defined == {"customers/write", "customers/read"}


def test_with_iam_each_method_is_granted_by_the_writer_or_the_reader_policy_only(template, resources):
    # GIVEN the two managed policies, which exist with IAM auth only
    granted: dict[str, list[str]] = {}
    for logical_id in ("ApiWriterPolicy", "ApiReaderPolicy"):
        policy = resources[logical_id]
        assert policy["Condition"] == "UseIamAuth"
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke")
        granted[logical_id] = [arn["Fn::Sub"] for arn in _as_list(statement["Resource"])]
    # THEN each method's ARN is in the policy that should grant it, and in no other
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${IngestApi}/${ApiStageName}"
    for (path, method), (_, policy) in METHOD_PERMISSIONS.items():
        resource = f"{prefix}/{method.upper()}{path.split('/{')[0]}" + ("/*" if "{" in path else "")
        assert [name for name, arns in granted.items() if resource in arns] == [policy], (path, method)
    assert sum(len(arns) for arns in granted.values()) == len(METHOD_PERMISSIONS)
    # AND the outputs hand them to whoever enrols callers
    for output in ("ApiWriterPolicyArn", "ApiReaderPolicyArn"):
        assert template["Outputs"][output]["Condition"] == "UseIamAuth"


def test_machine_callers_get_one_scope_each_through_the_client_credentials_grant(resources):
    for logical_id, scope in (("WriterClient", "customers/write"), ("ReaderClient", "customers/read")):
        client = props(resources, logical_id)
        assert resources[logical_id]["Condition"] == "UseCognitoAuth"
        assert client["GenerateSecret"] is True  # the grant needs a client secret
        assert client["AllowedOAuthFlowsUserPoolClient"] is True
        assert client["AllowedOAuthFlows"] == ["client_credentials"]
        assert client["AllowedOAuthScopes"] == [scope]
        assert not any("USER" in flow for flow in client["ExplicitAuthFlows"])  # no person signs in here
    assert props(resources, "UserPoolDomain")["UserPoolId"] == {"Ref": "UserPool"}  # the token endpoint


def test_people_sign_in_without_sending_their_password_to_the_api(resources):
    client = props(resources, "UserPoolClient")
    # SRP proves the password without sending it; the sign-in page's authorization code (with PKCE)
    # is how a person's access token gets the API's scopes.
    assert set(client["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert client["AllowedOAuthFlows"] == ["code"]
    assert {"customers/write", "customers/read"} <= set(client["AllowedOAuthScopes"])
    assert client["GenerateSecret"] is False
    assert client["CallbackURLs"] == [{"Ref": "UserSignInCallbackUrl"}]


# --- the edge ------------------------------------------------------------------------------------------


def test_the_api_accepts_tls_1_2_or_newer_only(resources):
    api = props(resources, "IngestApi")
    # An enhanced policy for TLS 1.3 and 1.2 (the regional default, TLS_1_0, accepts TLS 1.0); enhanced
    # policies need an endpoint access mode.
    assert api["SecurityPolicy"] == "SecurityPolicy_TLS13_1_2_PFS_PQ_2025_09"
    assert api["EndpointAccessMode"] == "STRICT"
    assert api["EndpointConfiguration"]["Type"] == "REGIONAL"


def test_the_access_log_records_the_tls_version_and_why_an_authorizer_refused(resources):
    log_format = props(resources, "IngestApi")["AccessLogSetting"]["Format"]
    fields = json.loads(log_format)  # one JSON object per request
    assert fields["tlsVersion"] == "$context.tlsVersion"
    assert fields["authorizerError"] == "$context.authorizer.error"
    assert fields["status"] == "$context.status"
    assert not any("body" in value.lower() for value in fields.values())  # no customer data


def test_waf_is_off_by_default_and_then_nothing_of_it_exists(template, resources):
    parameter = template["Parameters"]["ApiWafMode"]
    assert parameter["Default"] == "Off"
    assert parameter["AllowedValues"] == ["Off", "Count", "Block"]
    assert template["Conditions"]["UseWaf"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiWafMode"}, "Off"]}]}
    waf = {name for name, resource in resources.items() if resource["Type"].startswith("AWS::WAFv2::")}
    assert waf == {"ApiWebAcl", "ApiWebAclAssociation"}
    assert all(resources[name]["Condition"] == "UseWaf" for name in waf)


def test_waf_applies_the_managed_rule_groups_and_a_rate_limit_per_client_ip_to_the_stage(resources):
    acl = props(resources, "ApiWebAcl")
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in rules.values()
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert managed == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    # Count mode counts, Block mode enforces: managed groups by their override, the rate rule by its action
    block_or_count = ["WafBlocks", {"None": {}}, {"Count": {}}]
    for rule in rules.values():
        if "ManagedRuleGroupStatement" in rule["Statement"]:
            assert rule["OverrideAction"] == {"Fn::If": block_or_count}
    rate = rules["RateLimitPerClientIp"]
    assert rate["Action"] == {"Fn::If": ["WafBlocks", {"Block": {}}, {"Count": {}}]}
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "ApiWafRateLimit"}
    assert len({rule["Priority"] for rule in rules.values()}) == len(rules)
    # The common rule set's 8 KB body rule would refuse bodies the API accepts (up to 64 KiB): it counts.
    common = rules["CommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    association = props(resources, "ApiWebAclAssociation")
    assert association["WebACLArn"] == {"Fn::GetAtt": ["ApiWebAcl", "Arn"]}
    arn, variables = association["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("::/restapis/${IngestApi}/stages/${Stage}")
    assert variables == {"Stage": {"Ref": "IngestApi.Stage"}}


# --- limits ---------------------------------------------------------------------------------------------


def test_the_reader_answers_503_before_its_function_and_api_gateway_time_out(resources):
    # GIVEN the reader's database settings as the template sets them (what only AWS knows filled in)
    env = props(resources, "ReaderFunction")["Environment"]["Variables"]
    literal = {name: value for name, value in env.items() if isinstance(value, str)}
    aws = {"DB_HOST": "proxy.example", "DB_USER": "ingest_reader", "AWS_REGION": "us-east-1"}
    aws["DB_NAME"] = shared_values().database_name  # a FindInMap in the template
    settings = ReaderSettings.from_env(literal | aws).database
    # WHEN every step of a read takes just under its timeout (idle ping, connect, handshake, SELECT)
    worst_s = worst_case_s(settings)
    # THEN the reader still has a second to answer 503 before its timeout, which ends before API
    # Gateway's, and the proxy's borrow wait alone ends well before it too
    timeout_s = TEMPLATE.function_timeout("ReaderFunction")
    assert worst_s + 1 <= timeout_s < API_GATEWAY_TIMEOUT_S
    pool = props(resources, "DatabaseProxyTargetGroup")["ConnectionPoolConfigurationInfo"]
    assert pool["ConnectionBorrowTimeout"] < timeout_s


def test_a_throttled_function_gets_the_client_a_503_with_retry_after_not_a_500():
    # GIVEN the gateway response for a failed integration (Lambda throttling a function lands there)
    response = TEMPLATE.api_definition()["x-amazon-apigateway-gateway-responses"]["INTEGRATION_FAILURE"]
    # THEN it is the producer's and reader's "not now": 503, Retry-After, the JSON error shape
    assert response["statusCode"] == 503
    assert response["responseParameters"]["gatewayresponse.header.Retry-After"] == f"'{RETRY_AFTER_SECONDS}'"
    body = json.loads(response["responseTemplates"]["application/json"])
    assert set(body["error"]) == {"code", "message"}


def test_reads_have_reserved_concurrency_and_the_producer_may_have_some(template, resources):
    for function, parameter, condition in (
        ("ReaderFunction", "ReaderReservedConcurrency", "ReserveReaderConcurrency"),
        ("ProducerFunction", "ProducerReservedConcurrency", "ReserveProducerConcurrency"),
    ):
        # 0 means unreserved: the property is left out rather than set to 0, which would stop the function
        assert props(resources, function)["ReservedConcurrentExecutions"] == {
            "Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]
        }
        assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, 0]}]}
        assert template["Parameters"][parameter]["MinValue"] == 0
    # The reader is capped by default, below what the proxy's pool holds with the consumer's cap.
    assert template["Parameters"]["ReaderReservedConcurrency"]["Default"] > 0
    assert template["Parameters"]["ProducerReservedConcurrency"]["Default"] == 0


# --- static analysis -----------------------------------------------------------------------------------


def test_every_accepted_finding_is_skipped_with_its_reason(resources):
    # GIVEN the skips, which live in each resource's Metadata
    checkov_skips = [
        skip
        for resource in resources.values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    # THEN every checkov skip names a check and says why
    assert checkov_skips
    for skip in checkov_skips:
        assert set(skip) == {"id", "comment"}, skip
        assert skip["id"].startswith("CKV_"), skip
        assert len(skip["comment"]) > 20, skip
    # AND every cfn-lint rule ignored carries a comment on its line
    lines = TEMPLATE_PATH.read_text().splitlines()
    ignored = [index for index, line in enumerate(lines) if line.strip() == "ignore_checks:"]
    assert ignored
    for index in ignored:
        following = lines[index + 1 : index + 4]
        rules = [line for line in following if line.strip().startswith("- ")]
        assert rules, following
        assert all("# " in line for line in rules), following


def test_every_samconfig_override_names_a_parameter_and_a_value_it_allows(template):
    # GIVEN the deploy environments' parameter overrides
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = [
        (environment, *pair.split("=", 1))
        for environment, commands in config.items()
        if isinstance(commands, dict) and "deploy" in commands
        for pair in shlex.split(commands["deploy"]["parameters"].get("parameter_overrides", ""))
    ]
    assert {environment for environment, _, _ in overrides} == {"default", "dev", "prod"}
    # THEN each names a parameter of the template, with a value the parameter accepts
    for environment, name, value in overrides:
        parameter = template["Parameters"].get(name)
        assert parameter is not None, (environment, name)
        if "AllowedValues" in parameter:
            assert value in [str(allowed) for allowed in parameter["AllowedValues"]], (environment, name)
        if "MinValue" in parameter:
            assert float(value) >= parameter["MinValue"], (environment, name)
