"""The schema migrator custom resource: apply schema.sql and the app user on Create and Update."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

from ingest.schema import apply_schema, ensure_app_user

PHYSICAL_ID_PREFIX = "customer-ingest-schema"


def migrate(
    event: dict[str, Any],
    connect: Callable[[], Any],
    app_user: str,
    app_password: Callable[[], str],
    database: str,
) -> dict[str, Any]:
    """Run the migration the request asks for; returns the resource's Data. Delete keeps the data:
    the tables go with the cluster, whose own deletion policy decides."""
    if event["RequestType"] == "Delete":
        return {}
    connection = connect()
    try:
        statements = apply_schema(connection, database)
        ensure_app_user(connection, app_user, app_password(), database)
    finally:
        connection.close()
    return {"Statements": len(statements), "Database": database}


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
