"""SQS FIFO batch -> one transaction in Aurora, through RDS Proxy; failures reported per record."""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ingest.config import DatabaseSettings, RetrySettings
from ingest.connection import Database
from ingest.consumer import BatchOutcome, Consumer

logger = Logger()
tracer = Tracer(patch_modules=("botocore", "pymysql"))  # only what it calls: fewer imports at cold start
metrics = Metrics()
# skip_group_on_error: a failed record fails only the rest of its own message group.
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
consumer = Consumer(
    database=Database(DatabaseSettings.from_env()),
    retry=RetrySettings.from_env(),
    queue_url=os.environ.get("QUEUE_URL"),
    sqs=boto3.client("sqs"),
    logger=logger,
    # The queue's RedrivePolicy, so that a poison record leaves on the receive SQS would move it.
    dead_letter_queue_url=os.environ.get("DEAD_LETTER_QUEUE_URL"),
    max_receive_count=int(os.environ["MAX_RECEIVE_COUNT"]) if os.environ.get("MAX_RECEIVE_COUNT") else None,
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
def handler(event, context):
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
    if not outcome.failed:
        return {"batchItemFailures": []}
    if len(outcome.failed) == len(records):
        # Every record waits in the queue (the database is away, or only poison and its group came):
        # reported as item failures rather than raised, so the function does not count an error.
        return {"batchItemFailures": [{"itemIdentifier": record.message_id} for record in records]}

    def fail_if_not_stored(record: SQSRecord) -> None:
        if record.message_id in outcome.failed:
            raise RuntimeError(outcome.failed[record.message_id])

    return process_partial_response(
        event=event, record_handler=fail_if_not_stored, processor=processor, context=context
    )
