"""Checks on template.yaml that more than one template test uses: the actions that may name Resource
"*", cfn-lint as make lint runs it, and the deploys the template's Rules refuse."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.template import PSEUDO_PARAMETERS, TEMPLATE_PATH, Template

# Statements allowed Resource "*": the services offer no resource-level permission for these actions.
# Tracing and the VPC attachment: what every function in the VPC needs, and none of it has a resource
# narrower than "*".
TRACING_AND_VPC_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
)

DOCUMENT = Template().document


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def run_cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint with the serverless rules (cfn-lint-serverless) on `path`, as make lint runs it."""
    command = [_tool("cfn-lint"), "--append-rules", "cfn_lint_serverless.rules", "--", str(path)]
    return subprocess.run(command, capture_output=True, text=True, cwd=TEMPLATE_PATH.parent, check=False)


def evaluate_rule_function(value: Any, parameters: dict[str, str]) -> Any:
    """The rule functions template.yaml's Rules use (Fn::Equals, Fn::Not, Fn::Or, Fn::Contains, Ref)."""
    if isinstance(value, dict):
        ((function, argument),) = value.items()
        if function == "Ref":
            return parameters[argument]
        arguments = [evaluate_rule_function(item, parameters) for item in argument]
        if function == "Fn::Equals":
            return arguments[0] == arguments[1]
        if function == "Fn::Not":
            return not arguments[0]
        if function == "Fn::Or":
            return any(arguments)
        if function == "Fn::Contains":
            return arguments[1] in arguments[0]
        raise AssertionError(f"no rule function {function} here")
    return value


def deploy_refused(**overrides: str) -> list[str]:
    """The AssertDescriptions CloudFormation would answer a deploy with these parameters."""
    defaults = {name: str(p.get("Default", "")) for name, p in DOCUMENT["Parameters"].items()}
    parameters = PSEUDO_PARAMETERS | defaults | overrides
    refused = []
    for rule in DOCUMENT["Rules"].values():
        if "RuleCondition" in rule and not evaluate_rule_function(rule["RuleCondition"], parameters):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate_rule_function(assertion["Assert"], parameters):
                refused.append(assertion["AssertDescription"])
    return refused
