"""Invariants of template.yaml that the zero-loss promise depends on, plus cfn-lint and the events.

The template is read as local/template.py reads it for the local stack (short tags in long form,
openapi.yaml inlined), so these tests check what the local stack runs and CloudFormation deploys.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.template import TEMPLATE_PATH, Template, TemplateError

ROOT = TEMPLATE_PATH.parent
EVENTS = ROOT / "events"

# Statements allowed Resource "*": the services offer no resource-level permission for these actions.
STAR_ALLOWED_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


TEMPLATE = Template()
SHARED = TEMPLATE.shared_values()


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


def test_redrive_policy_sends_to_the_fifo_dlq_after_25_receives(resources):
    policy = props(resources, "CustomerQueue")["RedrivePolicy"]
    assert resolve_number(policy["maxReceiveCount"]) == SHARED.max_receive_count == 25  # README promise 5
    assert policy["deadLetterTargetArn"] == {"Fn::GetAtt": ["CustomerDeadLetterQueue", "Arn"]}


def test_the_consumer_parks_poison_on_the_receive_the_redrive_policy_would(resources):
    env = props(resources, "ConsumerFunction")["Environment"]["Variables"]
    receives = props(resources, "CustomerQueue")["RedrivePolicy"]["maxReceiveCount"]
    # One source for both: the Shared mapping.
    assert env["MAX_RECEIVE_COUNT"] == receives == {"Fn::FindInMap": ["Shared", "Queue", "MaxReceiveCount"]}
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
    proxy = props(resources, "DatabaseProxy")
    assert proxy["RequireTLS"] is True
    assert proxy["Auth"]
    assert all(entry["IAMAuth"] == "REQUIRED" for entry in proxy["Auth"])
    pool = props(resources, "DatabaseProxyTargetGroup")["ConnectionPoolConfigurationInfo"]
    # A client waiting for a database connection gives up well before the consumer's 30 s timeout.
    assert pool["ConnectionBorrowTimeout"] < int(props(resources, "ConsumerFunction")["Timeout"])
    assert 0 < pool["MaxConnectionsPercent"] <= 100


def test_security_groups_chain_functions_to_proxy_to_cluster_on_3306_only(resources):
    ingress = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress"
    }
    into_cluster = [rule for rule in ingress.values() if rule["GroupId"] == {"Ref": "DatabaseSecurityGroup"}]
    assert into_cluster == [
        {
            "GroupId": {"Ref": "DatabaseSecurityGroup"},
            "IpProtocol": "tcp",
            "FromPort": 3306,
            "ToPort": 3306,
            "SourceSecurityGroupId": {"Ref": "ProxySecurityGroup"},
            "Description": into_cluster[0]["Description"],
        }
    ]
    into_proxy = [rule for rule in ingress.values() if rule["GroupId"] == {"Ref": "ProxySecurityGroup"}]
    assert {rule["SourceSecurityGroupId"]["Ref"] for rule in into_proxy} == {
        "AppFunctionSecurityGroup",
        "MigratorSecurityGroup",
    }
    assert all((rule["FromPort"], rule["ToPort"]) == (3306, 3306) for rule in into_proxy)
    for logical_id in ("DatabaseSecurityGroup", "ProxySecurityGroup", "AppFunctionSecurityGroup"):
        assert "SecurityGroupIngress" not in props(resources, logical_id)


def test_custom_resource_waits_for_the_database_and_reruns_on_a_new_layer(resources):
    migration = resources["SchemaMigration"]
    assert migration["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["SchemaMigratorFunction", "Arn"]}
    assert migration["Properties"]["SchemaLayerVersion"] == {"Ref": "SharedLayer"}
    for dependency in ("WriterInstance", "DatabaseProxyTargetGroup", "S3GatewayEndpoint"):
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
    for logical_id in ("ConsumerFunction", "ReaderFunction", "SchemaMigratorFunction"):
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
        "SchemaMigratorFunctionRole": "DatabaseMasterUsername",
    }
    for role, user in expected_user.items():
        (resource,) = _actions(resources, role)["rds-db:connect"]
        arn, variables = resource["Fn::Sub"]
        assert arn.endswith(f":dbuser:${{ProxyId}}/${{{user}}}")
        assert arn.startswith("arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:")
        assert variables == {"ProxyId": proxy_id}
    assert "rds-db:connect" not in _actions(resources, "ProducerFunctionRole")


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


def test_only_the_proxy_reads_the_master_secret_and_the_app_user_has_none(resources):
    assert _actions(resources, "DatabaseProxyRole")["secretsmanager:GetSecretValue"] == [
        {"Fn::GetAtt": ["DatabaseCluster", "MasterUserSecret.SecretArn"]}
    ]
    for role in (
        "ProducerFunctionRole",
        "ConsumerFunctionRole",
        "ReaderFunctionRole",
        "SchemaMigratorFunctionRole",
    ):
        assert not any(action.startswith("secretsmanager:") for action in _actions(resources, role))
    assert not [r for r in resources.values() if r["Type"] == "AWS::SecretsManager::Secret"]
    # End-to-end IAM: the proxy itself logs in as the app user with a token.
    proxy = props(resources, "DatabaseProxy")
    assert proxy["DefaultAuthScheme"] == "IAM_AUTH"
    (master,) = proxy["Auth"]
    assert master["SecretArn"] == {"Fn::GetAtt": ["DatabaseCluster", "MasterUserSecret.SecretArn"]}
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


def test_api_uses_cognito_by_default_and_iam_by_parameter(template):
    assert template["Parameters"]["ApiAuthMode"]["Default"] == "COGNITO"
    assert template["Parameters"]["ApiAuthMode"]["AllowedValues"] == ["COGNITO", "IAM"]
    assert template["Conditions"]["UseCognitoAuth"] == {"Fn::Equals": [{"Ref": "ApiAuthMode"}, "COGNITO"]}
    body = TEMPLATE.api_definition()
    expected = {"Fn::If": ["UseCognitoAuth", [{"CognitoAuthorizer": []}], [{"sigv4": []}]]}
    assert set(body["securityDefinitions"]["Fn::If"][1]) == {"CognitoAuthorizer"}
    assert set(body["securityDefinitions"]["Fn::If"][2]) == {"sigv4"}
    for path in body["paths"].values():
        for operation in path.values():
            assert operation["security"] == expected
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


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def test_cfn_lint_reports_nothing():
    result = subprocess.run(
        [_tool("cfn-lint"), str(TEMPLATE_PATH)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_nothing_with_the_api_definition_inlined(tmp_path):
    # cfn-lint does not read AWS::Include files: lint the template as CloudFormation processes it, so
    # openapi.yaml's references (functions, user pool, conditions) are checked too.
    processed = tmp_path / "template.json"
    processed.write_text(json.dumps(TEMPLATE.document))
    result = subprocess.run(
        [_tool("cfn-lint"), str(processed)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_definition_is_included_from_its_own_file(template):
    # GIVEN the template as written (CloudFormation's AWS::Include, before it is processed)
    raw = TEMPLATE_PATH.read_text()
    # THEN IngestApi includes openapi.yaml, and the loaded template holds that file's definition
    assert "Location: openapi.yaml" in raw
    assert TEMPLATE.api_definition()["swagger"] == "2.0"
    assert set(TEMPLATE.api_definition()["paths"]) == {
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
