"""The schema migrator as the tests run it on MariaDB, and the custom resource events CloudFormation
sends it."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from local.servers import DatabaseEndpoint
from tests.conftest import load_handler

# MariaDB lacks Aurora's AWSAuthenticationPlugin; a built-in plugin without a password stands in for it.
STAND_IN_AUTHENTICATION = "IDENTIFIED VIA unix_socket"


def custom_resource_event(request_type: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:schema-migrator",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ingest/1",
        "RequestId": "req-1",
        "LogicalResourceId": "SchemaMigration",
        "ResourceType": "Custom::SchemaMigration",
        "ResourceProperties": {"SchemaVersion": "1"},
    }


def migrator_env(server: DatabaseEndpoint, database: str, app_user: str, reader_user: str) -> dict[str, str]:
    """The migrator's settings on a test server: its login with a password, and the two users it creates."""
    return server.env(database) | {"APP_DB_USER": app_user, "READER_DB_USER": reader_user}


def load_migrator(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """functions/migrator/app.py as a new container loads it, creating users MariaDB can have."""
    module = load_handler("migrator", monkeypatch, env)
    monkeypatch.setattr(module, "FUNCTION_USER_AUTHENTICATION", STAND_IN_AUTHENTICATION)
    return module
