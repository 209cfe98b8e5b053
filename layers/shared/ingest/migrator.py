"""The schema migrator custom resource: apply schema.sql and create the two function users on Create
and Update."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pymysql
from aws_lambda_powertools import Logger

from ingest.connection import DatabaseUnavailable
from ingest.retry import call_with_retries, fixed_pause
from ingest.schema import (
    APP_PRIVILEGES,
    IAM_AUTHENTICATION,
    READER_PRIVILEGES,
    apply_schema,
    ensure_function_user,
    schema_version,
)

PHYSICAL_ID_PREFIX = "customer-ingest-schema"
# Between attempts to reach a proxy whose target is still coming up.
CONNECT_RETRY_PAUSE_S = 10

logger = Logger(child=True)


def migrate(
    event: dict[str, Any],
    connect: Callable[[], pymysql.Connection],
    app_user: str,
    reader_user: str,
    database: str,
    authentication: str = IAM_AUTHENTICATION,
) -> dict[str, Any]:
    """Run the migration the request asks for; returns the resource's Data (its SchemaVersion is the
    stack's SchemaVersion output, through Fn::GetAtt). Delete keeps the data: the tables go with the
    cluster, whose own deletion policy decides."""
    if event["RequestType"] == "Delete":
        return {}
    # The connection belongs to the container's Database, which keeps or replaces it.
    connection = connect()
    statements = apply_schema(connection, database)
    ensure_function_user(connection, app_user, database, authentication, APP_PRIVILEGES)
    ensure_function_user(connection, reader_user, database, authentication, READER_PRIVILEGES)
    return {"Statements": len(statements), "Database": database, "SchemaVersion": schema_version()}


def connect_with_retry[T](connect: Callable[[], T], budget_s: float) -> T:
    """Connect, retrying while the proxy's target is still coming up after the cluster was created."""

    def log_retry(error: Exception, pause: float) -> None:
        logger.warning("database not reachable yet; retrying", error=str(error), pause_s=pause)

    return call_with_retries(
        connect,
        retry_if=lambda error: isinstance(error, DatabaseUnavailable),
        pause_s=fixed_pause(CONNECT_RETRY_PAUSE_S),
        budget_s=budget_s,
        on_retry=log_retry,
    )


def send_response(
    event: dict[str, Any],
    physical_id: str,
    status: str,
    reason: str,
    data: dict[str, Any],
    timeout: float = 30,
) -> None:
    """PUT the result to CloudFormation's pre-signed S3 URL (the S3 gateway endpoint carries it)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's own https URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
        reply.read()
