"""CloudFormation custom resource: applies the schema (idempotently) on every deploy that changes it."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.config import AMAZON_RDS_ROOTS, MigratorSettings
from ingest.connection import Database
from ingest.migrator import PHYSICAL_ID_PREFIX, connect_with_retry, migrate, send_response
from ingest.schema import IAM_AUTHENTICATION

logger = Logger()
metrics = Metrics()
# pymysql is not traced: X-Ray records an exception leaving a traced statement with its message,
# and a database's message can quote a row's values (docs/design.md, customer data).
tracer = Tracer(auto_patch=False)  # it calls nothing else worth a subsegment
# Logs in as the master user (DB_USER) with the password RDS keeps in its secret (DB_AUTH=secret),
# straight to the cluster's writer: RDS Proxy is for the functions' users alone, so the first create rests
# on no undocumented choice of the proxy between its IAM and secret schemes (docs/design.md). Creates the
# functions' users (APP_DB_USER, READER_DB_USER).
settings = MigratorSettings.from_env()
# Aurora's certificates chain to the RDS roots, not to the Amazon Trust roots of the proxy's (a
# DB_CA_BUNDLE that is set, as a local CA in the tests, is kept).
trusted = {} if "ca_bundle" in settings.database.model_fields_set else {"ca_bundle": AMAZON_RDS_ROOTS}
# No default database: on the first deploy it does not exist yet.
database = Database(settings.database.model_copy(update=trusted), select_database=False)
FUNCTION_USER_AUTHENTICATION = IAM_AUTHENTICATION
# Keep this much of the function's time to answer CloudFormation whatever happens.
ANSWER_MARGIN_MS = 60_000


# Nothing returned or raised goes to X-Ray: replies and errors can hold customer data.
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    physical_id = event.get("PhysicalResourceId") or f"{PHYSICAL_ID_PREFIX}-{settings.database.name}"
    status, reason, data = "SUCCESS", "", {}
    budget_s = max(context.get_remaining_time_in_millis() - ANSWER_MARGIN_MS, 0) / 1000
    try:
        data = migrate(
            event,
            lambda: connect_with_retry(database.connection, budget_s),
            settings.app_db_user,
            settings.reader_db_user,
            settings.database.name,
            FUNCTION_USER_AUTHENTICATION,
        )
        logger.info("schema request done", request_type=event["RequestType"], **data)
    except Exception as error:
        logger.exception("schema request failed", request_type=event["RequestType"])
        status, reason = "FAILED", f"{type(error).__name__}: {error}"
    metrics.add_metric(
        name="SchemaMigrationFailed" if status == "FAILED" else "SchemaMigrated",
        unit=MetricUnit.Count,
        value=1,
    )
    send_response(event, physical_id, status, reason or f"see log stream {context.log_stream_name}", data)
    return {"Status": status, "PhysicalResourceId": physical_id}
