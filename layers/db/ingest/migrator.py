"""The schema migrator custom resource: apply schema.sql and the app user on Create and Update."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from ingest.connection import DatabaseUnavailable
from ingest.schema import APP_PRIVILEGES, IAM_AUTHENTICATION, READER_PRIVILEGES, apply_schema, ensure_app_user

PHYSICAL_ID_PREFIX = "customer-ingest-schema"


def migrate(
    event: dict[str, Any],
    connect: Callable[[], Any],
    app_user: str,
    reader_user: str,
    database: str,
    authentication: str = IAM_AUTHENTICATION,
) -> dict[str, Any]:
    """Run the migration the request asks for; returns the resource's Data. Delete keeps the data:
    the tables go with the cluster, whose own deletion policy decides."""
    if event["RequestType"] == "Delete":
        return {}
    # The connection belongs to the container's Database, which keeps or replaces it.
    connection = connect()
    statements = apply_schema(connection, database)
    ensure_app_user(connection, app_user, database, authentication, APP_PRIVILEGES)
    ensure_app_user(connection, reader_user, database, authentication, READER_PRIVILEGES)
    return {"Statements": len(statements), "Database": database}


def connect_with_retry(connect: Callable[[], Any], budget_s: float, logger: Any, pause_s: float = 10) -> Any:
    """Connect, retrying while the proxy's target is still coming up after the cluster was created."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            return connect()
        except DatabaseUnavailable as error:
            if time.monotonic() + pause_s > deadline:
                raise
            logger.warning("database not reachable yet; retrying", error=str(error), pause_s=pause_s)
            time.sleep(pause_s)


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
