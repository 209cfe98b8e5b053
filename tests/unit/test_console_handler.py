"""The console function through its public handler, with API Gateway events as the REST API sends them
after its Cognito authorizer: only the console-operators group may use the JSON API, the page and its
sign-in settings are public. RDS and SQS are moto's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from local.lambda_runtime import LambdaContext
from local.testdata import api_event
from tests.conftest import load_handler
from tests.moto_stack import CONSOLE_CLIENT_ID, SIGN_IN_DOMAIN, MotoStack


@pytest.fixture
def console(monkeypatch) -> Iterator[tuple[Any, MotoStack]]:
    """functions/console/app.py loaded as a new container would, with template.yaml's variables."""
    with mock_aws():
        stack = MotoStack()
        yield load_handler("console", monkeypatch, stack.console_env()), stack


def call(
    module: Any, method: str, path: str, groups: str | None = None, body: dict | None = None
) -> tuple[int, dict[str, str], str]:
    event = api_event(method, path, body=body)
    if groups is not None:
        event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = groups
    event["requestContext"]["domainName"] = "abc123.execute-api.us-east-1.amazonaws.com"
    event["requestContext"]["stage"] = "v1"
    response = module.handler(event, LambdaContext(function_name="customer-ingest-dev-console"))
    headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], headers | (response.get("headers") or {}), response["body"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/console/api/config", None),
        ("GET", "/console/api/status", None),
        ("POST", "/console/api/faults", {"name": "failover"}),
        ("POST", "/console/api/reconcile", {"run_id": "abcdef", "request_ids": []}),
    ],
)
@pytest.mark.parametrize("groups", [None, "admins", "console-operators-old,admins"])
def test_the_api_refuses_whoever_is_not_a_console_operator(console, method, path, body, groups):
    # GIVEN a token the authorizer accepted, without the console-operators group
    module, stack = console
    # WHEN it calls the console's API
    status, _, text = call(module, method, path, groups, body)
    # THEN the answer is 403 with a JSON body that says why, and nothing was done
    assert status == 403
    assert json.loads(text)["error"]["code"] == "not_a_console_operator"
    writer = stack.rds.describe_db_clusters()["DBClusters"][0]["DBClusterMembers"][0]
    assert (writer["DBInstanceIdentifier"], writer["IsClusterWriter"]) == ("db-a", True)


@pytest.mark.parametrize(
    "groups", ["console-operators", "admins,console-operators", "[admins console-operators]"]
)
def test_an_operator_gets_the_config_and_the_status(console, groups):
    # GIVEN a member of console-operators (alone, or among other groups as API Gateway lists them)
    module, _ = console
    # WHEN they ask for the console's settings and the stack's status
    config_status, _, config = call(module, "GET", "/console/api/config", groups)
    status_status, _, status = call(module, "GET", "/console/api/status", groups)
    # THEN both answer 200: the AWS backend with its two faults, and the cluster's roles
    assert config_status == 200
    assert json.loads(config)["backend"] == "aws"
    assert [fault["name"] for fault in json.loads(config)["faults"]] == ["failover", "restart"]
    assert status_status == 200
    assert {(item["name"], item["role"]) for item in json.loads(status)["instances"]} == {
        ("db-a", "writer"),
        ("db-b", "reader"),
    }


def test_an_operator_fails_over_and_a_wrong_fault_gets_400_naming_the_field(console):
    module, stack = console
    # WHEN an operator asks for a fault the AWS backend does not have THEN 400 names the field
    status, _, text = call(module, "POST", "/console/api/faults", "console-operators", {"name": "upgrade"})
    assert (status, json.loads(text)["error"]["field"]) == (400, "name")
    # WHEN they fail the cluster over THEN 202, and the reader is the writer now
    status, _, text = call(module, "POST", "/console/api/faults", "console-operators", {"name": "failover"})
    assert (status, json.loads(text)["name"]) == (202, "failover")
    members = stack.rds.describe_db_clusters()["DBClusters"][0]["DBClusterMembers"]
    assert {member["DBInstanceIdentifier"]: member["IsClusterWriter"] for member in members} == {
        "db-a": False,
        "db-b": True,
    }


def test_the_page_and_its_sign_in_settings_need_no_sign_in(console):
    module, _ = console
    # WHEN anyone opens the page, a file of it, or its sign-in settings
    page_status, page_headers, page = call(module, "GET", "/console/")
    script_status, _, _ = call(module, "GET", "/console/static/console.js")
    settings_status, _, settings = call(module, "GET", "/console/config.json")
    # THEN they get them: the sign-in settings name the user pool's domain, the client and the way back
    assert (page_status, script_status, settings_status) == (200, 200, 200)
    assert page_headers["Content-Type"].startswith("text/html")
    assert "<html" in page.lower()
    assert json.loads(settings) == {
        "cognito_domain": SIGN_IN_DOMAIN,
        "client_id": CONSOLE_CLIENT_ID,
        "scopes": "openid customers/write customers/read",
        "redirect_uri": "https://abc123.execute-api.us-east-1.amazonaws.com/v1/console/",
    }
    # AND the page may fetch from its own origin and the sign-in domain's token endpoint, nothing else
    policy = dict(
        directive.split(" ", 1) for directive in page_headers["Content-Security-Policy"].split("; ")
    )
    assert policy["connect-src"] == f"'self' https://{SIGN_IN_DOMAIN}"


def test_the_page_without_its_slash_is_sent_to_it(console):
    # GIVEN the page's address typed without the final slash (its links are relative to /console/)
    module, _ = console
    status, headers, _ = call(module, "GET", "/console")
    # THEN the browser is sent to /console/
    assert (status, headers["Location"]) == (301, "console/")
