"""The model check of tests/botocore_model.py: a call that breaks its operation's input shape in
botocore's service model (a pattern, an enum, a maximum) is caught, a call that keeps it is not, and a
test that makes such a call fails."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.botocore_model import compiled_pattern, recorded_violations

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
SOURCE = f"arn:aws:rds:{REGION}:123456789012:cluster:ingest-cluster"


def stubbed(service: str, operation: str, answer: dict[str, Any]) -> Any:
    client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
    stubber = Stubber(client)
    stubber.add_response(operation, answer)
    stubber.activate()
    return client


def create_blue_green(name: str) -> list[str]:
    """The violations of a CreateBlueGreenDeployment named `name` (answered by a Stubber)."""
    rds = stubbed("rds", "create_blue_green_deployment", {"BlueGreenDeployment": {}})
    with recorded_violations() as found:
        rds.create_blue_green_deployment(
            BlueGreenDeploymentName=name, Source=SOURCE, TargetEngineVersion="8.0.mysql_aurora.3.09.0"
        )
    return found


def test_a_name_that_breaks_its_pattern_is_caught() -> None:
    """GIVEN BlueGreenDeploymentName's pattern [a-zA-Z](?:-?[a-zA-Z0-9]+)* WHEN a deployment is created
    with an underscore in its name (botocore and the Stubber accept it) THEN the check names the
    operation, the parameter and the pattern, though a part of the name matches it."""
    found = create_blue_green("ingest-cluster-8-0-mysql_aurora-3-09-0")

    assert found == [
        "rds.CreateBlueGreenDeployment: BlueGreenDeploymentName='ingest-cluster-8-0-mysql_aurora-3-09-0'"
        " does not match the pattern [a-zA-Z](?:-?[a-zA-Z0-9]+)*"
    ]


def test_a_call_that_keeps_the_model_passes() -> None:
    """GIVEN a name of letters, digits and single hyphens WHEN the deployment is created THEN nothing is
    caught."""
    assert create_blue_green("ingest-cluster-8-0-mysql-aurora-3-09-0") == []


def test_a_value_outside_its_enum_is_caught() -> None:
    """GIVEN DescribeAlarms' StateValue (OK, ALARM, INSUFFICIENT_DATA) WHEN asked for RED THEN caught."""
    cloudwatch = stubbed("cloudwatch", "describe_alarms", {"MetricAlarms": []})
    with recorded_violations() as found:
        cloudwatch.describe_alarms(StateValue="RED")

    assert found == ["cloudwatch.DescribeAlarms: StateValue='RED' is not one of OK, ALARM, INSUFFICIENT_DATA"]


def test_maximums_botocore_leaves_out_are_caught_inside_lists() -> None:
    """GIVEN DescribeAlarms' AlarmNames (at most 100 names of at most 255 characters) and MaxRecords (1 to
    100) WHEN asked with 101 names, one of them too long, and MaxRecords 101 THEN each is caught, the
    name by its index."""
    cloudwatch = stubbed("cloudwatch", "describe_alarms", {"MetricAlarms": []})
    names = ["alarm"] * 100 + ["x" * 256]
    with recorded_violations() as found:
        cloudwatch.describe_alarms(AlarmNames=names, MaxRecords=101)

    assert len(found) == 3
    assert "AlarmNames=" in found[0]
    assert "is longer than 100 (length 101)" in found[0]
    assert found[1].startswith("cloudwatch.DescribeAlarms: AlarmNames[100]='xxx")
    assert found[1].endswith("is longer than 255 (length 256)")
    assert found[2] == "cloudwatch.DescribeAlarms: MaxRecords=101 is above the maximum 100"


@pytest.mark.parametrize(
    ("java", "value", "matches"),
    [
        (r"[\p{L}\p{N}]+", "Zürich2", True),  # Unicode categories, which re does not know
        (r"[\p{L}\p{N}]+", "a-b", False),
        (r"[\w-_]+", "a-_b", True),  # a `-` after a set escape is itself to Java
        (r"\w+", "é", False),  # Java's \w is ASCII
        (r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF]+", "ok 😀", True),  # a surrogate pair: one code point
        (r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF]+", "not\x00ok", False),
        (r"ab(?i)cd", "abCD", True),  # inline flags in mid-pattern hold from there on
        (r"ab(?i)cd", "ABcd", False),
        (r"a.b", "a\rb", False),  # Java's dot stops at \r
        (r"\p{Alpha}+\z", "abc", True),
    ],
)
def test_java_patterns_read_as_java_reads_them(java: str, value: str, matches: bool) -> None:
    """GIVEN a pattern in Java's dialect WHEN a value is matched against the whole of it THEN it matches
    as java.util.regex's String.matches would."""
    compiled = compiled_pattern(java)

    assert compiled is not None
    assert (compiled.fullmatch(value) is not None) is matches


def test_a_test_that_breaks_the_model_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a test session with the plugin, one test making a call that breaks a pattern and one making
    a valid call, both answered by a Stubber WHEN the session runs THEN the first fails naming the
    parameter, the second passes."""
    pytester.makepyfile(
        textwrap.dedent(
            f"""
            import boto3
            from botocore.stub import Stubber

            def deployment(name):
                rds = boto3.client("rds", region_name="{REGION}")
                stubber = Stubber(rds)
                stubber.add_response("create_blue_green_deployment", {{"BlueGreenDeployment": {{}}}})
                stubber.activate()
                rds.create_blue_green_deployment(
                    BlueGreenDeploymentName=name, Source="{SOURCE}", TargetEngineVersion="8.0"
                )

            def test_breaks():
                deployment("blue_green")

            def test_keeps():
                deployment("blue-green")
            """
        )
    )

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # where the plugin is found
    result = pytester.runpytest_subprocess("-p", "tests.botocore_model", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_breaks*", "*BlueGreenDeploymentName='blue_green' does not match*"])
