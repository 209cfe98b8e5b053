"""ApiSnapStart: the producer and the reader behind a published alias, SnapStart on that parameter.

The template is put through the SAM transform itself (samtranslator, what `sam deploy` and
CloudFormation run), so the tests see the versions, aliases, permissions and API integrations that
get deployed, and the SnapStart setting each value of the parameter gives.
"""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
import tomllib
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from local.template import TEMPLATE_PATH, Template

TEMPLATE = Template()
API_FUNCTIONS = ("ProducerFunction", "ReaderFunction")
# Each API operation and the function whose alias it invokes.
OPERATIONS = {
    ("/customers", "post"): "ProducerFunction",
    ("/customers/{customer_id}", "get"): "ReaderFunction",
    ("/records/{request_id}", "get"): "ReaderFunction",
}
PERMISSIONS = {
    "ProducerApiPermission": "ProducerFunction",
    "ReaderCustomersApiPermission": "ReaderFunction",
    "ReaderRecordsApiPermission": "ReaderFunction",
}


class _NoManagedPolicies:
    """The functions name their own roles: the transform has no SAM policy templates to look up."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def deployed(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    """The resources CloudFormation receives after the SAM transform (code as `sam package` uploads it)."""
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the transform fills AWS::Region
    document = copy.deepcopy(TEMPLATE.document)
    for logical_id, resource in document["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{logical_id}.zip"
    return dict(transform(document, {}, _NoManagedPolicies())["Resources"])


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def evaluate(value: Any, parameters: dict[str, str]) -> Any:
    """Fn::If over the template's conditions (Fn::Equals of a parameter), as CloudFormation evaluates it."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        condition, when_true, when_false = value["Fn::If"]
        left, right = TEMPLATE.document["Conditions"][condition]["Fn::Equals"]
        holds = parameters.get(left["Ref"], TEMPLATE.parameter_default(left["Ref"])) == right
        return evaluate(when_true if holds else when_false, parameters)
    return value


def alias_of(resources: dict[str, Any], function: str) -> str:
    [alias] = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::Alias"
        and resource["Properties"]["FunctionName"] == {"Ref": function}
    ]
    return alias


def test_the_parameter_is_off_unless_asked_for_and_described_for_the_guided_deploy():
    parameter = TEMPLATE.parameters["ApiSnapStart"]
    assert parameter["AllowedValues"] == ["Enabled", "Disabled"]
    # It is billed (caching and restores), so a deploy opts in.
    assert parameter["Default"] == "Disabled"
    groups = TEMPLATE.document["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert [group["Label"]["default"] for group in groups if "ApiSnapStart" in group["Parameters"]] == [
        "Cold start of the API functions"
    ]


@pytest.mark.parametrize(("value", "apply_on"), [("Enabled", "PublishedVersions"), ("Disabled", "None")])
def test_snapstart_follows_the_parameter_on_both_api_functions_only(deployed, value, apply_on):
    # GIVEN the deployed functions WHEN ApiSnapStart has this value
    settings = {
        logical_id: evaluate(
            resource["Properties"].get("SnapStart", {}).get("ApplyOn"), {"ApiSnapStart": value}
        )
        for logical_id, resource in deployed.items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    # THEN the producer and the reader snapshot their published versions (or not); no other function does
    assert {logical_id: settings[logical_id] for logical_id in API_FUNCTIONS} == dict.fromkeys(
        API_FUNCTIONS, apply_on
    )
    assert all(setting is None for logical_id, setting in settings.items() if logical_id not in API_FUNCTIONS)


def test_each_api_function_publishes_a_version_on_every_change_behind_its_live_alias(deployed):
    for function in API_FUNCTIONS:
        properties = TEMPLATE.resource_properties(function)
        # Every property counts, so turning SnapStart on or off publishes a version that has it
        assert properties["AutoPublishAlias"] == "live"
        assert properties["AutoPublishAliasAllProperties"] is True
        alias = deployed[alias_of(deployed, function)]["Properties"]
        assert alias["Name"] == "live"
        version = alias["FunctionVersion"]["Fn::GetAtt"][0]
        assert deployed[version]["Type"] == "AWS::Lambda::Version"
        assert deployed[version]["Properties"]["FunctionName"] == {"Ref": function}
        # A deploy deletes the version it replaces (and with it a snapshot that would still be billed)
        assert deployed[version]["DeletionPolicy"] == "Delete"


def test_the_api_invokes_the_aliases_and_may_invoke_nothing_else(deployed):
    body = deployed["IngestApi"]["Properties"]["Body"]
    for (path, method), function in OPERATIONS.items():
        uri = body["paths"][path][method]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        # Ref of an alias is its ARN, qualified with the alias name
        assert f"/functions/${{{alias_of(deployed, function)}}}/invocations" in uri
    for permission, function in PERMISSIONS.items():
        assert deployed[permission]["Properties"]["FunctionName"] == {"Ref": alias_of(deployed, function)}
        assert deployed[permission]["Properties"]["Principal"] == "apigateway.amazonaws.com"
    granted = {
        str(resource["Properties"]["FunctionName"])
        for resource in deployed.values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    # Besides the aliases, only the demo console's function (DemoConsole=Enabled; no SnapStart there)
    console = {str({"Ref": "ConsoleFunction"})}
    assert granted == {str({"Ref": alias_of(deployed, function)}) for function in API_FUNCTIONS} | console


def test_nothing_snapstart_rules_out_is_configured_on_the_api_functions(deployed):
    # Lambda SnapStart: Python 3.12 or later; no provisioned concurrency, no EFS, at most 512 MB of /tmp.
    runtime = TEMPLATE.document["Globals"]["Function"]["Runtime"]
    assert runtime.startswith("python3.")
    assert int(runtime.removeprefix("python3.")) >= 12
    for function in API_FUNCTIONS:
        properties = deployed[function]["Properties"]
        assert "FileSystemConfigs" not in properties
        assert properties.get("EphemeralStorage", {}).get("Size", 512) <= 512
    provisioned = [
        resource
        for resource in deployed.values()
        if "ProvisionedConcurrencyConfig" in resource.get("Properties", {})
    ]
    assert provisioned == []


@pytest.mark.parametrize(("environment", "value"), [("dev", "Disabled"), ("prod", "Enabled")])
def test_samconfig_turns_it_off_in_dev_and_on_in_prod(environment, value):
    config = tomllib.loads((TEMPLATE_PATH.parent / "samconfig.toml").read_text())
    overrides = dict(
        item.split("=", 1)
        for item in shlex.split(config[environment]["deploy"]["parameters"]["parameter_overrides"])
    )
    assert overrides["ApiSnapStart"] == value


@pytest.mark.parametrize("value", ["Enabled", "Disabled"])
def test_sam_validate_accepts_the_template_with_either_value(tmp_path, value):
    # GIVEN the template with the parameter's default set to this value (sam validate checks the defaults)
    text = TEMPLATE_PATH.read_text()
    marker = "  ApiSnapStart:\n    Type: String\n    Default: Disabled\n"
    assert marker in text
    variant = tmp_path / "template.yaml"
    variant.write_text(text.replace(marker, marker.replace("Disabled", value)))
    (tmp_path / "openapi.yaml").write_text((TEMPLATE_PATH.parent / "openapi.yaml").read_text())
    # WHEN SAM validates it (with its lint) THEN it is valid
    sam = TEMPLATE_PATH.parent / ".venv" / "bin" / "sam"
    result = subprocess.run(
        [str(sam if sam.exists() else "sam"), "validate", "--lint", "--template", str(variant)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
