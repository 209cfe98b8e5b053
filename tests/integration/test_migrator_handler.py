"""The schema migrator custom resource against a real MariaDB, answering a local stand-in for S3."""

from __future__ import annotations

import pytest

from ingest.schema import schema_version
from tests.conftest import load_handler


def custom_resource_event(request_type: str, url: str) -> dict:
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


DATABASE = "migrated_ingest"  # does not exist before the first Create


def migrator_env(server) -> dict[str, str]:
    return {
        "DB_HOST": server.host,
        "DB_PORT": str(server.port),
        "DB_NAME": DATABASE,
        "DB_USER": server.user,
        "DB_PASSWORD": server.password,
        "DB_AUTH": "password",
        "DB_TLS": "off",
        "APP_DB_USER": "ingest_app_test",
        "READER_DB_USER": "ingest_reader_test",
    }


def load_migrator(monkeypatch, env):
    module = load_handler("migrator", monkeypatch, env)
    # MariaDB lacks Aurora's AWSAuthenticationPlugin; a built-in plugin without a password stands in.
    monkeypatch.setattr(module, "APP_USER_AUTHENTICATION", "IDENTIFIED VIA unix_socket")
    return module


@pytest.fixture
def migrator(database_server, monkeypatch):
    yield load_migrator(monkeypatch, migrator_env(database_server)), DATABASE
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cursor.execute("DROP USER IF EXISTS 'ingest_app_test'@'%'")
        cursor.execute("DROP USER IF EXISTS 'ingest_reader_test'@'%'")


@pytest.mark.parametrize("request_types", [["Create"], ["Create", "Update", "Update"]])
def test_create_and_update_apply_the_schema_idempotently(
    migrator, database_server, response_url, lambda_context, request_types
):
    module, name = migrator
    url, received = response_url

    # WHEN CloudFormation sends the requests (an update reruns everything)
    for request_type in request_types:
        module.handler(custom_resource_event(request_type, url), lambda_context)

    # THEN every answer is SUCCESS, the tables exist, and the app user may write rows, not change schema
    assert [answer["Status"] for answer in received] == ["SUCCESS"] * len(request_types)
    # AND each answer names the schema it applied (the stack's SchemaVersion output, which verify reads)
    assert [answer["Data"]["SchemaVersion"] for answer in received] == [schema_version()] * len(request_types)
    with database_server.connect(name) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        assert {row[0] for row in cursor.fetchall()} == {"customer_records", "customers"}
        cursor.execute("SHOW GRANTS FOR 'ingest_app_test'@'%'")
        grants = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SHOW GRANTS FOR 'ingest_reader_test'@'%'")
        reader_grants = " ".join(row[0] for row in cursor.fetchall())
    assert f"GRANT SELECT, INSERT, UPDATE ON `{name}`.*" in grants
    assert "ALL PRIVILEGES" not in grants
    # AND the reader's user may only read
    assert f"GRANT SELECT ON `{name}`.*" in reader_grants
    assert "INSERT" not in reader_grants
    assert "UPDATE" not in reader_grants


def test_a_failure_is_reported_failed_not_left_hanging(
    database_server, response_url, lambda_context, monkeypatch
):
    # GIVEN a migrator that cannot reach its database
    from local.servers import free_port

    env = {**migrator_env(database_server), "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "1"}
    module = load_migrator(monkeypatch, env)
    url, received = response_url

    # WHEN CloudFormation asks for a create
    module.handler(custom_resource_event("Create", url), lambda_context)

    # THEN CloudFormation hears FAILED with the reason, at once (no hour-long hang)
    assert received[0]["Status"] == "FAILED"
    assert "DatabaseUnavailable" in received[0]["Reason"]


def test_delete_keeps_the_data_and_answers_success(migrator, response_url, lambda_context):
    module, _ = migrator
    url, received = response_url
    module.handler(custom_resource_event("Delete", url), lambda_context)
    assert received[0]["Status"] == "SUCCESS"
