"""The schema migrator custom resource against a real MariaDB, answering a local stand-in for S3."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from ingest.schema import schema_version
from local.servers import DatabaseEndpoint
from tests.migrator import custom_resource_event, load_migrator, migrator_env

DATABASE = "migrated_ingest"  # does not exist before the first Create


def env_of(server: DatabaseEndpoint) -> dict[str, str]:
    return migrator_env(server, DATABASE, "ingest_app_test", "ingest_reader_test")


@pytest.fixture
def migrator(database_server, monkeypatch):
    yield load_migrator(monkeypatch, env_of(database_server)), DATABASE
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

    env = {**env_of(database_server), "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "1"}
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


MASTER = "migrator_master_test"
MASTER_SECRET = "rds!cluster-migrator-test"


@pytest.fixture
def master_login(database_server):
    """A master user on the server whose password lives in a Secrets Manager secret (moto), as RDS keeps
    an Aurora cluster's: {"username", "password"}."""
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE OR REPLACE USER '{MASTER}'@'%' IDENTIFIED BY 'first-password'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{MASTER}'@'%' WITH GRANT OPTION")
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(
            Name=MASTER_SECRET, SecretString=json.dumps({"username": MASTER, "password": "first-password"})
        )["ARN"]
        yield secrets, arn
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{MASTER}'@'%'")
        cursor.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cursor.execute("DROP USER IF EXISTS 'ingest_app_test'@'%'")
        cursor.execute("DROP USER IF EXISTS 'ingest_reader_test'@'%'")


def secret_env(database_server, arn: str, user: str = MASTER) -> dict[str, str]:
    env = env_of(database_server) | {"DB_USER": user, "DB_AUTH": "secret", "DB_SECRET_ARN": arn}
    env |= {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    del env["DB_PASSWORD"]
    return env


def test_the_master_login_reads_its_password_from_rds_secret_at_every_login(
    master_login, database_server, response_url, lambda_context, monkeypatch
):
    """GIVEN the master user's password in its secret and the migrator set to log in with it
    (DB_AUTH=secret, no password in its environment) WHEN CloudFormation creates the schema, RDS then
    rotates the password, and CloudFormation updates THEN both answers are SUCCESS: each login reads the
    secret as it is then."""
    secrets, arn = master_login
    module = load_migrator(monkeypatch, secret_env(database_server, arn))
    url, received = response_url

    module.handler(custom_resource_event("Create", url), lambda_context)
    with database_server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"ALTER USER '{MASTER}'@'%' IDENTIFIED BY 'rotated-password'")
    secrets.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"username": MASTER, "password": "rotated-password"})
    )
    module.database.discard()  # the next deploy runs in a new container, or after the connection closed
    module.handler(custom_resource_event("Update", url), lambda_context)

    assert [answer["Status"] for answer in received] == ["SUCCESS", "SUCCESS"]
    with database_server.connect(DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        assert {row[0] for row in cursor.fetchall()} == {"customer_records", "customers"}


def test_a_secret_of_another_user_fails_the_deploy_at_once_naming_no_password(
    master_login, database_server, response_url, lambda_context, monkeypatch
):
    """GIVEN DB_USER names another user than the secret holds (a template mistake) WHEN CloudFormation
    creates the schema THEN the answer is FAILED at once, not after the connection retries' minutes,
    and its reason names the user, never the password."""
    _, arn = master_login
    module = load_migrator(monkeypatch, secret_env(database_server, arn, user="someone_else"))
    url, received = response_url

    module.handler(custom_resource_event("Create", url), lambda_context)

    (answer,) = received
    assert answer["Status"] == "FAILED"
    assert "DB_USER=someone_else" in answer["Reason"]
    assert "first-password" not in answer["Reason"]
