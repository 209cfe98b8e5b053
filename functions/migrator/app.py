"""CloudFormation custom resource: applies the schema (idempotently) through the proxy on every deploy."""

import json
import os

import boto3
from aws_lambda_powertools import Logger, Tracer

from ingest.config import DatabaseSettings
from ingest.connection import Database
from ingest.migrator import PHYSICAL_ID_PREFIX, migrate, send_response

logger = Logger()
tracer = Tracer()
settings = DatabaseSettings.from_env()
# No default database: on the first deploy it does not exist yet.
database = Database(settings, select_database=False)


def _app_password() -> str:
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["APP_DB_SECRET_ARN"])
    return json.loads(secret["SecretString"])["password"]


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event, context):
    physical_id = event.get("PhysicalResourceId") or f"{PHYSICAL_ID_PREFIX}-{settings.name}"
    status, reason, data = "SUCCESS", "", {}
    try:
        data = migrate(event, database.connection, os.environ["APP_DB_USER"], _app_password, settings.name)
        logger.info("schema request done", request_type=event["RequestType"], **data)
    except Exception as error:
        logger.exception("schema request failed", request_type=event["RequestType"])
        status, reason = "FAILED", f"{type(error).__name__}: {error}"
    send_response(event, physical_id, status, reason or f"see log stream {context.log_stream_name}", data)
    return {"Status": status, "PhysicalResourceId": physical_id}
