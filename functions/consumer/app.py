"""SQS FIFO batch -> one transaction in Aurora, through RDS Proxy; failures reported per record."""

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.clients import fail_fast_config
from ingest.config import ConsumerSettings
from ingest.connection import Database
from ingest.consumer import BatchOutcome, Consumer

# The function's Timeout in template.yaml (a unit test keeps the two equal). The consumer's SQS
# calls (retry delays, dead-lettering) get half of it; the database work the other half.
FUNCTION_TIMEOUT_S = 30

logger = Logger()
tracer = Tracer(patch_modules=("botocore", "pymysql"))  # only what it calls: fewer imports at cold start
metrics = Metrics()
settings = ConsumerSettings.from_env()
consumer = Consumer(
    database=Database(settings.database),
    settings=settings,
    sqs=boto3.client("sqs", config=fail_fast_config(within_s=FUNCTION_TIMEOUT_S / 2)),
)


def _emit_metrics(outcome: BatchOutcome) -> None:
    metrics.add_metric(name="Committed", unit=MetricUnit.Count, value=outcome.inserted)
    metrics.add_metric(name="DuplicatesIgnored", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(outcome.failed))
    metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=len(outcome.poison))
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=len(outcome.dead_lettered))
    if outcome.database_unavailable:
        metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=1)


@tracer.capture_lambda_handler
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    records = [SQSRecord(raw) for raw in event["Records"]]
    outcome = consumer.process(records)
    _emit_metrics(outcome)
    # The counts are metrics already; failures log their own warnings. Per-batch detail is for debugging.
    logger.debug(
        "batch processed",
        records=len(records),
        inserted=outcome.inserted,
        duplicates=outcome.duplicates,
        failed=len(outcome.failed),
    )
    return outcome.batch_item_failures()
