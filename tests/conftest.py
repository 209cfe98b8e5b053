"""Fixtures shared by every test: a quiet Powertools, a real MariaDB, handlers loaded with their env."""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import pymysql
import pytest

from ingest.config import DatabaseSettings
from ingest.schema import apply_schema
from local.lambda_runtime import LambdaContext

ROOT = Path(__file__).resolve().parents[1]

# Powertools outside Lambda: no X-Ray daemon to talk to, metrics under a fixed namespace.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "customer-ingest-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CustomerIngestTest")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(function_name="test-function")


def load_handler(name: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """Import functions/<name>/app.py afresh with `env`, as a new Lambda container would."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    module_name = f"functions.{name}.app"
    sys.modules.pop(module_name, None)
    return importlib.import_module(module_name)


@dataclass(frozen=True)
class DatabaseServer:
    host: str
    port: int
    user: str
    password: str

    def connect(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            autocommit=True,
        )


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    """A MariaDB to test against: TEST_DB_HOST/TEST_DB_PORT/TEST_DB_USER/TEST_DB_PASSWORD when set,
    otherwise a throwaway server started here (never the machine's shared one)."""
    if os.environ.get("TEST_DB_HOST"):
        yield DatabaseServer(
            host=os.environ["TEST_DB_HOST"],
            port=int(os.environ.get("TEST_DB_PORT", "3306")),
            user=os.environ.get("TEST_DB_USER", "root"),
            password=os.environ.get("TEST_DB_PASSWORD", ""),
        )
        return
    from local.mariadb import MariaDB
    from local.ports import free_port

    server = MariaDB(port=free_port(), datadir=tmp_path_factory.mktemp("mariadb"), name="test-mariadb")
    server.start()
    try:
        yield DatabaseServer(host=server.host, port=server.port, user="root", password="")
    finally:
        server.stop()
        server.remove_datadir()


@dataclass(frozen=True)
class TestDatabase:
    server: DatabaseServer
    name: str

    @property
    def env(self) -> dict[str, str]:
        """What a handler reads in the local stack: password auth, no TLS."""
        return {
            "DB_HOST": self.server.host,
            "DB_PORT": str(self.server.port),
            "DB_NAME": self.name,
            "DB_USER": self.server.user,
            "DB_PASSWORD": self.server.password,
            "DB_AUTH": "password",
            "DB_TLS": "off",
        }

    @property
    def settings(self) -> DatabaseSettings:
        return DatabaseSettings.from_env(self.env)

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.server.connect(self.name) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())


@pytest.fixture
def test_database(database_server: DatabaseServer) -> Iterator[TestDatabase]:
    """A fresh database with the schema applied by the migrator's own code; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with database_server.connect() as connection:
        apply_schema(connection, name)
    yield TestDatabase(server=database_server, name=name)
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def response_url():
    """Captures the PUT that CloudFormation's pre-signed URL would receive."""
    received: list[dict] = []

    class Capture(BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/cfn-response", received
    server.shutdown()
