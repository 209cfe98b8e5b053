"""What CloudFormation receives from `sam deploy`: template.yaml with openapi.yaml included, the code
locations replaced by S3 URIs (as `sam package` does), through the AWS::Serverless transform of the
samtranslator release SAM CLI ships, run offline. And each value made concrete for a given set of
parameter values, so policy documents can be linted as IAM will read them.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from functools import cache
from typing import Any
from unittest import mock

import boto3
from samtranslator.model import apigateway
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local.template import PSEUDO_PARAMETERS, TEMPLATE_PATH, Template, load_template

_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:._]+)\}")
REGION = PSEUDO_PARAMETERS["AWS::Region"]
ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
STACK = PSEUDO_PARAMETERS["AWS::StackName"]


@cache
def _packaged() -> str:
    """template.yaml as `sam package` leaves it: every local code location an S3 URI (JSON, so each
    translation starts from a fresh copy)."""
    document = load_template()
    for logical_id, resource in document["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = f"s3://deployment-bucket/{logical_id}.zip"
    return json.dumps(document)


def translated(parameters: dict[str, str] | None = None, deployed_at: float | None = None) -> Template:
    """The transform's output for these parameter values (the others take their Default), as a deploy
    at `deployed_at` (seconds since the epoch) makes it: AlwaysDeploy names the deployment after it."""
    document = json.loads(_packaged())
    translator = Translator(
        managed_policy_map={},  # no SAM policy templates or managed policy names are used
        sam_parser=Parser(),
        boto_session=boto3.Session(region_name=REGION),
    )
    now = time.time() if deployed_at is None else deployed_at
    with mock.patch.object(apigateway.time, "time", return_value=now):
        output = translator.translate(document, parameter_values=dict(parameters or {}))
    return Template(TEMPLATE_PATH, document=output)


def rendered(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The transform's output with these parameter values applied: conditions evaluated, Fn::If chosen."""
    return translated(parameters).rendered(parameters)


# How each kind of resource is named in an ARN or returned by Ref, for the concrete values below.
_ARN_OF_TYPE = {
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}.fifo",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::WAFv2::WebACL": "arn:aws:wafv2:{region}:{account}:regional/webacl/{name}/id",
    "AWS::Cognito::UserPool": "arn:aws:cognito-idp:{region}:{account}:userpool/{region}_{name}",
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
}
_REF_OF_TYPE = {
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}.fifo",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
}
_ATTRIBUTES = {
    ("AWS::RDS::DBCluster", "DBClusterResourceId"): "cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    ("AWS::RDS::DBCluster", "MasterUserSecret.SecretArn"): (
        "arn:aws:secretsmanager:{region}:{account}:secret:rds!cluster-0123-AbCdEf"
    ),
    ("AWS::RDS::DBCluster", "Endpoint.Address"): "{name}.cluster-abc.{region}.rds.amazonaws.com",
    ("AWS::RDS::DBProxy", "DBProxyArn"): "arn:aws:rds:{region}:{account}:db-proxy:prx-0123456789abcdef0",
}


class Concrete:
    """Intrinsic functions of a rendered template turned into the strings CloudFormation would pass:
    parameters their values, resources plausible physical ids and ARNs of their type. A function or a
    resource type it does not know is an error, so nothing is linted half-resolved."""

    def __init__(self, document: dict[str, Any], parameters: dict[str, str] | None = None) -> None:
        self.resources: dict[str, Any] = document["Resources"]
        self.mappings: dict[str, Any] = document.get("Mappings", {})
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in document.get("Parameters", {}).items()
        } | dict(parameters or {})

    def _format(self, pattern: str, logical_id: str) -> str:
        name = f"{STACK}-{logical_id}"
        return pattern.format(region=REGION, account=ACCOUNT, name=name)

    def ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources[name]
        if resource["Type"] == "AWS::Lambda::Function" and "FunctionName" in resource.get("Properties", {}):
            return str(self(resource["Properties"]["FunctionName"]))
        return self._format(_REF_OF_TYPE.get(resource["Type"], "{name}"), name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if attribute == "Arn" and kind in _ARN_OF_TYPE:
            return self._format(_ARN_OF_TYPE[kind], logical_id)
        if (kind, attribute) in _ATTRIBUTES:
            return self._format(_ATTRIBUTES[kind, attribute], logical_id)
        raise KeyError(f"no concrete value for {logical_id}.{attribute} ({kind}): add one")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {key: self(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical_id, attribute)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            values = {name: self(item) for name, item in variables.items()}
            return _SUB_VARIABLE.sub(lambda match: str(values.get(match[1]) or self._sub(match[1])), text)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(self(item)) for item in items)
        if function == "Fn::FindInMap":
            mapping, top, second = (self(item) for item in argument)
            return self.mappings[mapping][top][second]
        if function == "Fn::Select":
            index, items = argument
            return self(items)[int(index)]
        if function == "Fn::Split":
            separator, text = argument
            return str(self(text)).split(separator)
        if function == "Fn::GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        raise KeyError(f"no concrete value for {function}: add it")

    def _sub(self, name: str) -> str:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.get_att(logical_id, attribute)
        return self.ref(name)


# Where a policy document sits in each resource type that holds one.
_POLICY_PROPERTIES = {
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::Logs::ResourcePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::EC2::VPCEndpoint": ("PolicyDocument",),
}


def policy_documents(document: dict[str, Any], concrete: Concrete) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document of the rendered template, concrete, named `LogicalId/where`: identity
    policies (roles' inline policies, managed policies) and resource policies (log groups, topic, key,
    endpoints). Trust policies are left out: they name services, not resources."""
    for logical_id, resource in document["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield (
                    f"{logical_id}/{policy['PolicyName']}",
                    concrete(copy.deepcopy(policy["PolicyDocument"])),
                )
        for key in _POLICY_PROPERTIES.get(resource["Type"], ()):
            if key in properties:
                value = concrete(copy.deepcopy(properties[key]))
                yield f"{logical_id}/{key}", json.loads(value) if isinstance(value, str) else value
