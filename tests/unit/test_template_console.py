"""The demo console in template.yaml and openapi.yaml: nothing of it without DemoConsole=Enabled, and with
it a function of its own with least privilege, a page behind the user pool, and its paths in the API."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ingest.config import DatabaseSettings
from ingest.connection import worst_case_s
from ingest.errors import API_GATEWAY_TIMEOUT_S
from local.template import TEMPLATE_PATH, Template
from tests.deployed_template import rendered
from tests.template_checks import TRACING_AND_VPC_ACTIONS, deploy_refused, run_cfn_lint

ROOT = TEMPLATE_PATH.parent
TEMPLATE = Template()
RAW = TEMPLATE.document
DISABLED = TEMPLATE.rendered()
ENABLED = TEMPLATE.rendered({"DemoConsole": "Enabled"})
CONSOLE = ENABLED["Resources"]

# Everything the console adds to the stack, and nothing else.
CONSOLE_RESOURCES = {
    "ConsoleSecurityGroup",
    "RdsEndpointSecurityGroup",
    "ConsoleToDatabaseEgress",
    "DatabaseFromConsoleIngress",
    "ConsoleToSqsEndpointEgress",
    "EndpointsFromConsoleIngress",
    "ConsoleToRdsEndpointEgress",
    "RdsEndpointFromConsoleIngress",
    "RdsEndpoint",
    "ConsoleLogGroup",
    "ConsoleLayer",
    "ConsoleFunctionRole",
    "ConsoleFunction",
    "ConsoleApiPermission",
    "ConsoleClient",
    "ConsoleOperatorsGroup",
}
CONSOLE_PATHS = {
    "/console",
    "/console/static/{name}",
    "/console/config.json",
    "/console/api/config",
    "/console/api/status",
    "/console/api/faults",
    "/console/api/reconcile",
}
PUBLIC_PATHS = {"/console", "/console/static/{name}", "/console/config.json"}
CLUSTER_ARN = "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:cluster:${DatabaseCluster}"
INSTANCE_ARNS = {
    "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:${WriterInstance}",
    "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:${ReaderInstance}",
}
QUEUES = {"CustomerQueue", "CustomerDeadLetterQueue"}
CONSOLE_URL = "https://${IngestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiStageName}/console/"


def paths(document: dict[str, Any]) -> dict[str, Any]:
    return document["Resources"]["IngestApi"]["Properties"]["DefinitionBody"]["paths"]


def statements(document: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    properties = document["Resources"][logical_id]["Properties"]
    if "Policies" in properties:
        return [
            statement
            for policy in properties["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]
    return list(properties["PolicyDocument"]["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_names(value: Any) -> set[str]:
    """Each resource of a statement as text: a Sub's string, or the logical id a GetAtt or Ref names."""
    names = set()
    for item in as_list(value):
        if isinstance(item, str):
            names.add(item)
        elif "Fn::Sub" in item:
            names.add(item["Fn::Sub"] if isinstance(item["Fn::Sub"], str) else item["Fn::Sub"][0])
        elif "Fn::GetAtt" in item:
            names.add(item["Fn::GetAtt"][0])
        else:
            names.add(item["Ref"])
    return names


def granted(document: dict[str, Any], logical_id: str) -> dict[str, set[str]]:
    """Action -> the resources it is granted on, over a role's or an endpoint's policy."""
    actions: dict[str, set[str]] = {}
    for statement in statements(document, logical_id):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            actions.setdefault(action, set()).update(resource_names(statement["Resource"]))
    return actions


# ---- the parameter, the rule, the environments --------------------------------------------------------


def test_the_console_is_disabled_by_default_and_needs_cognito():
    parameter = RAW["Parameters"]["DemoConsole"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("Disabled", ["Enabled", "Disabled"])
    assert "production" in parameter["Description"]
    # WHEN CloudFormation checks the Rules THEN Enabled with IAM auth is refused, saying what to set
    # (a dev deploy: no alarm destination needed)
    dev = {"DatabaseDeletionProtection": "false"}
    (refused,) = deploy_refused(DemoConsole="Enabled", ApiAuthMode="IAM", **dev)
    assert "ApiAuthMode" in refused
    assert deploy_refused(DemoConsole="Enabled", **dev) == []
    assert deploy_refused(DemoConsole="Disabled", ApiAuthMode="IAM", **dev) == []


def deploy_overrides() -> dict[str, dict[str, str]]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {
        environment: dict(
            pair.split("=", 1)
            for pair in shlex.split(commands["deploy"]["parameters"]["parameter_overrides"])
        )
        for environment, commands in config.items()
        if isinstance(commands, dict) and "deploy" in commands
    }


def test_the_dev_environment_enables_the_console_and_production_keeps_it_disabled():
    overrides = deploy_overrides()
    assert overrides["dev"]["DemoConsole"] == "Enabled"
    assert overrides["prod"].get("DemoConsole", RAW["Parameters"]["DemoConsole"]["Default"]) == "Disabled"
    assert overrides["default"].get("DemoConsole", RAW["Parameters"]["DemoConsole"]["Default"]) == "Disabled"


# ---- Disabled: nothing of it; Enabled: exactly it ------------------------------------------------------


@pytest.mark.parametrize("auth", ["COGNITO", "IAM"])
def test_nothing_of_the_console_exists_when_disabled(auth):
    # GIVEN the stack deployed with the console Disabled
    stack = TEMPLATE.rendered({"ApiAuthMode": auth, "DemoConsole": "Disabled"})
    # THEN none of its resources, paths, output or endpoint permissions is there
    assert not CONSOLE_RESOURCES & set(stack["Resources"])
    assert not [path for path in paths(stack) if path.startswith("/console")]
    assert "DemoConsoleUrl" not in stack["Outputs"]
    assert [statement["Sid"] for statement in statements(stack, "SqsEndpoint")] == [
        "ConsumerBackoffOnly",
        "ConsumerParksPoisonOnly",
    ]
    deployed = json.dumps({section: stack[section] for section in ("Resources", "Outputs")})
    assert "console" not in deployed.lower().replace(".console.aws.amazon.com", "")  # the dashboard's link


def test_enabling_the_console_adds_exactly_its_resources_each_under_its_condition():
    added = set(ENABLED["Resources"]) - set(DISABLED["Resources"])
    assert added == CONSOLE_RESOURCES
    for logical_id in CONSOLE_RESOURCES:
        assert RAW["Resources"][logical_id]["Condition"] == "UseDemoConsole", logical_id
    assert RAW["Conditions"]["UseDemoConsole"] == {
        "Fn::And": [{"Fn::Equals": [{"Ref": "DemoConsole"}, "Enabled"]}, {"Condition": "UseCognitoAuth"}]
    }
    assert set(paths(ENABLED)) - set(paths(DISABLED)) == CONSOLE_PATHS
    assert ENABLED["Outputs"]["DemoConsoleUrl"]["Value"] == {"Fn::Sub": CONSOLE_URL}


@pytest.mark.parametrize("value", ["Enabled", "Disabled"])
def test_cfn_lint_reports_nothing_with_the_console(value, tmp_path: Path):
    # GIVEN the template, with openapi.yaml inlined, deployed with DemoConsole=<value> by default
    document = json.loads(json.dumps(RAW))
    document["Parameters"]["DemoConsole"]["Default"] = value
    processed = tmp_path / "template.json"
    processed.write_text(json.dumps(document))
    # WHEN cfn-lint (with the serverless rules) checks it THEN it finds nothing
    result = run_cfn_lint(processed)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the function -------------------------------------------------------------------------------------


def test_the_function_has_a_fixed_name_that_the_api_definition_invokes():
    function = CONSOLE["ConsoleFunction"]["Properties"]
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-console"}
    assert function["CodeUri"] == "functions/console/"
    assert (ROOT / "functions/console/app.py").is_file()
    invocation = (
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-console/invocations"
    )
    for path in CONSOLE_PATHS:
        for operation in paths(ENABLED)[path].values():
            assert operation["x-amazon-apigateway-integration"]["uri"] == {"Fn::Sub": invocation}, path
            assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    permission = CONSOLE["ConsoleApiPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "ConsoleFunction"}
    assert permission["SourceArn"]["Fn::Sub"].endswith("${IngestApi}/${ApiStageName}/*/console*")


def test_the_console_package_is_a_layer_of_the_console_function_alone():
    # GIVEN the console's layer in the template and its package's project file
    layer = RAW["Resources"]["ConsoleLayer"]
    project = tomllib.loads((ROOT / "layers/console/pyproject.toml").read_text())["project"]
    # THEN it is the ingest_console package, built as the shared layer is, and needs nothing but that layer
    assert layer["Properties"]["ContentUri"] == "layers/console/"
    assert (ROOT / "layers/console/ingest_console/__init__.py").is_file()
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert project["dependencies"] == ["customer-ingest-layer"]
    # WHEN SAM transforms the template with the console THEN the console function runs with the shared
    # layer then its own, and every other function with the shared layer alone
    deployed = rendered({"DemoConsole": "Enabled"})["Resources"]
    # SAM names each layer's version after its logical id and a hash of its content.
    layers = {
        logical_id: [ref["Ref"].rstrip("0123456789abcdef") for ref in resource["Properties"]["Layers"]]
        for logical_id, resource in deployed.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert layers.pop("ConsoleFunction") == ["SharedLayer", "ConsoleLayer"]
    assert set(layers) == {"ProducerFunction", "ConsumerFunction", "ReaderFunction", "SchemaMigratorFunction"}
    assert all(refs == ["SharedLayer"] for refs in layers.values()), layers


def test_the_function_reads_as_the_read_only_user_with_iam_and_verified_tls_before_api_gateway_gives_up():
    env = CONSOLE["ConsoleFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DB_USER"] == {"Ref": "ReaderDatabaseUser"}
    assert (env["DB_AUTH"], env["DB_TLS"]) == ("iam", "verify")
    assert env["DB_HOST"] == {"Fn::GetAtt": ["DatabaseCluster", "Endpoint.Address"]}
    assert env["DB_CLUSTER_ID"] == {"Ref": "DatabaseCluster"}
    assert (env["QUEUE_URL"], env["DEAD_LETTER_QUEUE_URL"]) == (
        {"Ref": "CustomerQueue"},
        {"Ref": "CustomerDeadLetterQueue"},
    )
    assert env["CONSOLE_CLIENT_ID"] == {"Ref": "ConsoleClient"}
    # Each instance's count is bounded by the database timeouts, and all are counted at once.
    count = worst_case_s(
        DatabaseSettings.from_env(
            {
                "DB_HOST": "instance",
                "DB_NAME": "ingest",
                "DB_USER": "reader",
                "DB_AUTH": "password",
                "DB_CONNECT_TIMEOUT": env["DB_CONNECT_TIMEOUT"],
                "DB_READ_TIMEOUT": env["DB_READ_TIMEOUT"],
            }
        )
    )
    timeout = CONSOLE["ConsoleFunction"]["Properties"]["Timeout"]
    assert count < timeout < API_GATEWAY_TIMEOUT_S


def test_the_function_logs_to_its_own_group_with_retention():
    function = CONSOLE["ConsoleFunction"]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "ConsoleLogGroup"}
    assert CONSOLE["ConsoleLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert granted(ENABLED, "ConsoleFunctionRole")["logs:PutLogEvents"] == {"ConsoleLogGroup"}


def test_the_function_reaches_the_instances_and_the_two_endpoints_only():
    function = CONSOLE["ConsoleFunction"]["Properties"]
    assert function["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "ConsoleSecurityGroup"}]
    egress = {
        (rule["Properties"]["DestinationSecurityGroupId"]["Ref"], rule["Properties"]["FromPort"])
        for rule in CONSOLE.values()
        if rule["Type"] == "AWS::EC2::SecurityGroupEgress"
        and rule["Properties"]["GroupId"] == {"Ref": "ConsoleSecurityGroup"}
    }
    assert egress == {
        ("DatabaseSecurityGroup", 3306),
        ("EndpointSecurityGroup", 443),
        ("RdsEndpointSecurityGroup", 443),
    }
    (default_egress,) = CONSOLE["ConsoleSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert default_egress["CidrIp"] == "255.255.255.255/32"  # the placeholder that matches nothing
    into = {
        (rule["Properties"]["GroupId"]["Ref"], rule["Properties"]["FromPort"])
        for rule in CONSOLE.values()
        if rule["Type"] == "AWS::EC2::SecurityGroupIngress"
        and rule["Properties"]["SourceSecurityGroupId"] == {"Ref": "ConsoleSecurityGroup"}
    }
    assert into == {
        ("DatabaseSecurityGroup", 3306),
        ("EndpointSecurityGroup", 443),
        ("RdsEndpointSecurityGroup", 443),
    }
    rds_endpoint = CONSOLE["RdsEndpoint"]["Properties"]
    assert rds_endpoint["SecurityGroupIds"] == [{"Ref": "RdsEndpointSecurityGroup"}]
    assert rds_endpoint["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.rds"}


# ---- least privilege ----------------------------------------------------------------------------------


def test_the_role_fails_over_and_reboots_this_cluster_only_and_reads_our_two_queues_only():
    actions = granted(ENABLED, "ConsoleFunctionRole")
    reader_login = (
        "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:"
        "${DatabaseCluster.DBClusterResourceId}/${ReaderDatabaseUser}"
    )
    expected = {
        "rds:DescribeDBClusters": {CLUSTER_ARN},
        "rds:FailoverDBCluster": {CLUSTER_ARN},
        "rds:DescribeDBInstances": INSTANCE_ARNS,
        "rds:RebootDBInstance": INSTANCE_ARNS,
        "rds:DescribeEvents": {"*"},  # RDS has no resource-level permission for it
        "sqs:GetQueueAttributes": QUEUES,
        "sqs:ReceiveMessage": {"CustomerDeadLetterQueue"},
        "sqs:ChangeMessageVisibility": {"CustomerDeadLetterQueue"},
        "rds-db:connect": {reader_login},
    }
    for action, resources in expected.items():
        assert actions.pop(action) == resources, action
    # What remains is the logging, tracing and VPC attachment every function of the stack has.
    assert set(actions) == {"logs:CreateLogStream", "logs:PutLogEvents"} | TRACING_AND_VPC_ACTIONS


def test_the_endpoints_let_through_only_the_consoles_calls_on_this_stack():
    assert granted(ENABLED, "RdsEndpoint") == {
        "rds:DescribeDBClusters": {CLUSTER_ARN},
        "rds:FailoverDBCluster": {CLUSTER_ARN},
        "rds:DescribeDBInstances": INSTANCE_ARNS,
        "rds:RebootDBInstance": INSTANCE_ARNS,
        "rds:DescribeEvents": {"*"},
    }
    assert granted(ENABLED, "SqsEndpoint") == {
        "sqs:ChangeMessageVisibility": QUEUES,  # the consumer's backoff, the console's peek
        "sqs:SendMessage": {"CustomerDeadLetterQueue"},
        "sqs:GetQueueAttributes": QUEUES,
        "sqs:ReceiveMessage": {"CustomerDeadLetterQueue"},
    }


# ---- who may use it -----------------------------------------------------------------------------------


def test_the_page_is_public_and_its_api_needs_a_signed_in_persons_access_token():
    body = paths(ENABLED)
    for path in CONSOLE_PATHS:
        # Each path exists under the console's condition only, nothing in its place otherwise.
        condition, _, otherwise = paths(RAW)[path]["Fn::If"]
        assert (condition, otherwise) == ("UseDemoConsole", {"Ref": "AWS::NoValue"})
        for operation in body[path].values():
            if path in PUBLIC_PATHS:
                assert "security" not in operation, path
            else:
                # a scope makes API Gateway take an access token (not an ID token); the function then
                # requires the console-operators group
                assert operation["security"] == [{"CognitoAuthorizer": ["customers/read"]}], path
                assert "403" in operation["responses"], path


def test_people_sign_in_to_the_console_with_the_code_flow_and_pkce_and_come_back_to_it():
    client = CONSOLE["ConsoleClient"]["Properties"]
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "customers/write", "customers/read"}
    assert client["CallbackURLs"] == [{"Fn::Sub": CONSOLE_URL}]
    assert "ALLOW_USER_PASSWORD_AUTH" not in client["ExplicitAuthFlows"]
    group = CONSOLE["ConsoleOperatorsGroup"]["Properties"]
    assert (group["GroupName"], group["UserPoolId"]) == ("console-operators", {"Ref": "UserPool"})
    # An administrator creates the users: nobody signs up on their own.
    assert ENABLED["Resources"]["UserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]
