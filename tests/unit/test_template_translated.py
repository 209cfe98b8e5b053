"""What CloudFormation receives: template.yaml through the AWS::Serverless transform, offline, with the
included API definition inlined (tests/deployed_template.py). The SAM resources expand into others (the
API's deployment and stage, functions' versions and aliases, event source mappings) that the template
never shows: what they are is asserted here, and every policy document is linted as IAM reads it.
"""

from __future__ import annotations

import fnmatch
import json
import re
import warnings
from typing import Any

import pytest

from local.template import Template
from tests.deployed_template import ACCOUNT, REGION, Concrete, policy_documents, rendered, translated

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # parliament imports the deprecated pkg_resources
    from parliament import analyze_policy_string

# Parameter sets that make every conditional resource and branch exist at least once.
PARAMETER_SETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "everything on": {
        "DemoConsole": "Enabled",
        "ApiWafMode": "Block",
        "AlarmEmail": "operators@example.com",
        "DatabaseMonitoringIntervalSeconds": "60",
        "DatabasePerformanceInsights": "true",
        "ApiCreateCloudWatchRole": "true",
        "ApiSnapStart": "Enabled",
        "ReaderReservedConcurrency": "5",
        "ProducerReservedConcurrency": "5",
    },
    "iam auth": {"ApiAuthMode": "IAM", "AlarmTopicArn": "arn:aws:sns:us-east-1:000000000000:operators"},
}

# Findings of the IAM linter that are what AWS requires, each with the reason. Anything else fails.
ACCEPTED_FINDINGS = {
    # Lambda attaches a function to the VPC with these calls under the execution role; the AWS managed
    # AWSLambdaVPCAccessExecutionRole grants them on "*" ("Granting Lambda functions access to
    # resources in an Amazon VPC", Lambda Developer Guide).
    ("RESOURCE_STAR", "ec2:CreateNetworkInterface"),
    ("RESOURCE_STAR", "ec2:DeleteNetworkInterface"),
    ("RESOURCE_STAR", "ec2:AssignPrivateIpAddresses"),
    ("RESOURCE_STAR", "ec2:UnassignPrivateIpAddresses"),
}
# In a key policy "*" is the key itself ("Key policies in AWS KMS", AWS KMS Developer Guide).
KEY_POLICY_SUFFIX = "/KeyPolicy"


def _resources_of_type(document: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: item for name, item in document["Resources"].items() if item["Type"] == kind}


@pytest.fixture(scope="module", params=sorted(PARAMETER_SETS))
def deployed(request) -> tuple[dict[str, str], dict[str, Any]]:
    parameters = PARAMETER_SETS[request.param]
    return parameters, rendered(parameters)


def test_the_api_has_one_stage_the_configured_one(deployed):
    """GIVEN the transformed template WHEN its API Gateway resources are counted THEN there is exactly
    one stage, named by ApiStageName, and no deployment creates a stage of its own (SAM's "Stage")."""
    _, document = deployed
    (stage,) = _resources_of_type(document, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == {"Ref": "ApiStageName"}
    deployments = _resources_of_type(document, "AWS::ApiGateway::Deployment")
    assert len(deployments) == 1
    (deployment,) = deployments.values()
    assert "StageName" not in deployment["Properties"]
    assert stage["Properties"]["DeploymentId"] == {"Ref": next(iter(deployments))}


def test_the_only_stage_has_the_settings_the_waf_and_the_alarms_rely_on(deployed):
    parameters, document = deployed
    ((stage_id, stage),) = _resources_of_type(document, "AWS::ApiGateway::Stage").items()
    properties = stage["Properties"]
    assert properties["TracingEnabled"] is True
    assert properties["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert properties["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    if parameters.get("ApiWafMode", "Off") != "Off":
        association = document["Resources"]["ApiWebAclAssociation"]["Properties"]["ResourceArn"]
        assert association["Fn::Sub"][1] == {"Stage": {"Ref": stage_id}}
    for alarm in ("ApiServerErrorsAlarm", "ApiLatencyAlarm"):
        dimensions = document["Resources"][alarm]["Properties"]["Dimensions"]
        assert {"Name": "Stage", "Value": {"Ref": "ApiStageName"}} in dimensions


def _function_of(invocation_uri: str) -> str:
    """The function (or alias) an integration invokes, as its name: the part after `function:` of an
    ARN, or the whole reference."""
    target = invocation_uri.split("/functions/", 1)[1].removesuffix("/invocations")
    return target.split(":function:", 1)[-1]


def _method_arns(document: dict[str, Any], concrete: Concrete) -> list[tuple[str, str]]:
    """For each operation of the API: the function its integration invokes, and the source ARN API
    Gateway presents when it invokes it (path parameters filled in)."""
    api, stage = concrete.ref("IngestApi"), concrete.ref("ApiStageName")
    body = document["Resources"]["IngestApi"]["Properties"]["Body"]
    arns = []
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            integration = (
                operation.get("x-amazon-apigateway-integration") if isinstance(operation, dict) else None
            )
            if not integration or integration.get("type") != "aws_proxy":
                continue
            request_path = re.sub(r"\{[^}]+\}", "sample-value", path)
            source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{stage}/{method.upper()}{request_path}"
            arns.append((_function_of(concrete(integration["uri"])), source))
    return arns


def test_each_operation_may_invoke_its_function_from_the_stage_and_from_nowhere_else(deployed):
    """GIVEN every operation of the deployed API, the function its integration invokes and the source
    ARN API Gateway presents for it THEN a permission of that very function (or alias) matches the
    ARN (ArnLike), so every route can invoke what it integrates; and the same call from another stage
    (SAM's "Stage", one made by hand) matches none."""
    parameters, document = deployed
    concrete = Concrete(document, parameters)
    permissions = [
        (_function_of("/functions/" + str(concrete(item["Properties"]["FunctionName"]))),
         concrete(item["Properties"]["SourceArn"]))
        for item in _resources_of_type(document, "AWS::Lambda::Permission").values()
        if item["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]  # fmt: skip
    operations = _method_arns(document, concrete)
    assert len(operations) >= 3
    for function, source in operations:
        granted = [pattern for name, pattern in permissions if name == function]
        assert any(fnmatch.fnmatchcase(source, pattern) for pattern in granted), (function, source)
        elsewhere = source.replace(f"/{concrete.ref('ApiStageName')}/", "/Stage/", 1)
        assert not any(fnmatch.fnmatchcase(elsewhere, pattern) for _, pattern in permissions), elsewhere


def test_every_invoke_permission_of_api_gateway_names_the_stage(deployed):
    """GIVEN every permission that lets API Gateway invoke a function THEN its source ARN names the
    stage: another stage of the API (one made by hand, or SAM's) cannot invoke the functions."""
    _, document = deployed
    permissions = [
        item["Properties"]
        for item in _resources_of_type(document, "AWS::Lambda::Permission").values()
        if item["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert permissions
    for permission in permissions:
        source = permission["SourceArn"]["Fn::Sub"]
        assert ":${IngestApi}/${ApiStageName}/" in source, source


@pytest.mark.parametrize(
    ("parameter", "before", "after"),
    [
        ("DemoConsole", "Disabled", "Enabled"),
        ("ApiWafMode", "Off", "Block"),
        ("ApiAuthMode", "COGNITO", "IAM"),
    ],
)
def test_a_deploy_that_changes_only_a_parameter_deploys_the_api_again(parameter, before, after):
    """GIVEN a stack deployed with one value of a parameter that changes the API's definition (an Fn::If
    in openapi.yaml) WHEN it is deployed again later with another value THEN the stage points at a new
    deployment: SAM hashes the definition before parameters resolve, so without AlwaysDeploy the
    deployment keeps its logical id and API Gateway keeps serving the old definition."""
    first = translated({parameter: before}, deployed_at=1_800_000_000).document
    second = translated({parameter: after}, deployed_at=1_800_000_600).document
    first_deployment = next(iter(_resources_of_type(first, "AWS::ApiGateway::Deployment")))
    second_deployment = next(iter(_resources_of_type(second, "AWS::ApiGateway::Deployment")))
    assert first_deployment != second_deployment
    ((_, stage),) = _resources_of_type(second, "AWS::ApiGateway::Stage").items()
    assert stage["Properties"]["DeploymentId"] == {"Ref": second_deployment}


def test_the_transform_adds_no_role_of_its_own(deployed):
    """GIVEN the functions' roles written out in the template THEN the transform creates no role (SAM's
    would carry AWS managed policies with Resource "*") and every function runs with one of ours."""
    parameters, document = deployed
    written = _resources_of_type(Template().rendered(parameters), "AWS::IAM::Role")
    roles = _resources_of_type(document, "AWS::IAM::Role")
    assert set(roles) == set(written)
    for function in _resources_of_type(document, "AWS::Lambda::Function").values():
        assert function["Properties"]["Role"]["Fn::GetAtt"][0] in written


def _findings(policy: dict[str, Any], where: str) -> list[str]:
    analyzed = analyze_policy_string(json.dumps(policy))
    problems = []
    for finding in analyzed.findings:
        actions = finding.detail if isinstance(finding.detail, list) else [finding.detail]
        if finding.issue == "RESOURCE_STAR" and where.endswith(KEY_POLICY_SUFFIX):
            continue
        unexplained = [a for a in actions if (finding.issue, str(a)) not in ACCEPTED_FINDINGS]
        if unexplained:
            problems.append(f"{where}: {finding.issue} {unexplained}")
    return problems


def test_every_policy_document_passes_the_iam_linter(deployed):
    """GIVEN every identity and resource policy of the deployed template, its intrinsics resolved to
    concrete ARNs WHEN parliament lints it THEN nothing is reported but the findings AWS requires
    (unknown actions, ARNs of the wrong resource type, malformed conditions would all be reported)."""
    parameters, document = deployed
    documents = list(policy_documents(document, Concrete(document, parameters)))
    assert len(documents) >= 8
    problems = [problem for where, policy in documents for problem in _findings(policy, where)]
    assert problems == []


def test_the_linter_reports_what_the_accepted_findings_do_not_cover():
    """GIVEN a policy with an unknown action and an action on an ARN of the wrong type THEN both are
    reported: the lint above can fail."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMesage",
                "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
            },
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": "arn:aws:sns:us-east-1:123456789012:t",
            },
        ],
    }
    reported = " ".join(_findings(policy, "Example/policy"))
    assert "UNKNOWN_ACTION" in reported
    assert "RESOURCE_MISMATCH" in reported
