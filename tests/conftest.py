"""Fixtures shared by every test: a quiet Powertools, a real MariaDB, handlers loaded with their env."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import pytest

from ingest.config import DatabaseSettings
from ingest.schema import apply_schema
from local.lambda_runtime import LambdaContext, load_function_module
from local.servers import DatabaseEndpoint, throwaway_mariadb

# Every AWS call of every test checked against botocore's service model (patterns, enums, lengths, ranges).
pytest_plugins = ["tests.botocore_model"]

# Powertools outside Lambda: no X-Ray daemon to talk to, metrics under a fixed namespace.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "customer-ingest-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CustomerIngestTest")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def received_once(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message waiting in the queue at `url`, received (and so hidden for a minute) once."""
    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages"):
        received.extend(batch)
    return received


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="test-function")


def load_handler(name: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """Load functions/<name>/app.py afresh with `env`, as a new Lambda container would."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_function_module(name)


@pytest.fixture(scope="session")
def database_server() -> Iterator[DatabaseEndpoint]:
    """A MariaDB to test against: TEST_DB_HOST/TEST_DB_PORT/TEST_DB_USER/TEST_DB_PASSWORD when set,
    otherwise a throwaway server started here (never the machine's shared one)."""
    if os.environ.get("TEST_DB_HOST"):
        yield DatabaseEndpoint(
            host=os.environ["TEST_DB_HOST"],
            port=int(os.environ.get("TEST_DB_PORT", "3306")),
            user=os.environ.get("TEST_DB_USER", "root"),
            password=os.environ.get("TEST_DB_PASSWORD", ""),
        )
        return
    with throwaway_mariadb("test-mariadb") as server:
        yield server.endpoint


@dataclass(frozen=True)
class FreshDatabase:
    server: DatabaseEndpoint
    name: str

    @property
    def env(self) -> dict[str, str]:
        """What a handler reads in the local stack: password auth, no TLS."""
        return self.server.env(self.name)

    @property
    def settings(self) -> DatabaseSettings:
        return DatabaseSettings.from_env(self.env)

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.server.connect(self.name) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())


@pytest.fixture
def fresh_database(database_server: DatabaseEndpoint) -> Iterator[FreshDatabase]:
    """A fresh database with the schema applied by the migrator's own code; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with database_server.connect() as connection:
        apply_schema(connection, name)
    yield FreshDatabase(server=database_server, name=name)
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def response_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Captures the PUT that CloudFormation's pre-signed URL would receive."""
    received: list[dict[str, Any]] = []

    class Capture(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cfn-response", received
    server.shutdown()
