"""Schema-driven fuzzing of the running local API: schemathesis generates requests from the OpenAPI
definition the template deploys, valid and invalid ones, and checks every answer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.stack import Stack, StackOptions
from local.template import Template

pytestmark = pytest.mark.slow


def deployed_definition(template: Template) -> dict[str, Any]:
    """openapi.yaml as template.yaml deploys it with its defaults (the demo console Disabled), for a
    client of the local stack: the template's conditions and substitutions resolved, without API
    Gateway's extensions and without the authorizer (the local stack has none, as `sam local
    start-api`)."""
    return _resolved(template, template.rendered()["Resources"]["IngestApi"]["Properties"]["DefinitionBody"])


def _resolved(template: Template, value: Any) -> Any:
    if isinstance(value, dict):
        value = template.resolve(value)
    if isinstance(value, dict):
        resolved = {
            key: _resolved(template, item)
            for key, item in value.items()
            if not key.startswith("x-amazon-apigateway-") and key not in ("security", "securityDefinitions")
        }
        if unresolved := [key for key in resolved if key.startswith("Fn::")]:
            raise AssertionError(f"the definition still holds {unresolved} for the client's copy")
        return resolved
    if isinstance(value, list):
        return [_resolved(template, item) for item in value]
    return value


# Per API operation and generation mode (valid, invalid); with its coverage phase (boundary values,
# every documented status) schemathesis makes well over MIN_REQUESTS requests from it.
MAX_EXAMPLES = 150
MIN_REQUESTS = 1_000
# What is checked on every answer: no 5xx; a status the definition documents for the operation, with
# its content type, headers and schema; and every request the definition makes invalid refused with
# a 4xx. (positive_data_acceptance is left out: the definition is more lenient than the producer,
# which also refuses what JSON Schema cannot say, such as NaN or duplicate keys; docs/design.md.)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)


@pytest.fixture
def running_api(stack_options: StackOptions) -> Iterator[str]:
    stack = Stack(stack_options)
    stack.start()
    try:
        yield stack.api.url
    finally:
        stack.stop()


def test_generated_requests_get_only_documented_answers_and_no_server_error(
    running_api: str, tmp_path: Path
) -> None:
    """GIVEN the local stack running the real handlers WHEN schemathesis sends over MIN_REQUESTS
    requests generated from the deployed definition, valid and invalid THEN every check passes on
    every answer."""
    definition = tmp_path / "openapi.json"
    definition.write_text(json.dumps(deployed_definition(Template())))
    har = tmp_path / "requests.har"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(definition),
            "--url",
            running_api,
            "--mode",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--checks",
            ",".join(CHECKS),
            "--workers",
            "2",
            "--generation-database",
            "none",
            "--report",
            "har",
            "--report-har-path",
            str(har),
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = [entry["response"]["status"] for entry in entries]
    print(f"{len(entries)} requests, answered", dict(sorted(Counter(statuses).items())))  # pytest -s
    assert len(entries) >= MIN_REQUESTS, run.stdout[-5_000:]
    assert not [status for status in statuses if status >= 500]
