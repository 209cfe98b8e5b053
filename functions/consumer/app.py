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
from ingest.retry import Deadline

# A batch answers this long before the invocation's end (its remaining time, from the context): a
# timed-out invocation fails its whole batch, which reappears only after the queue's visibility timeout
# (Lambda Developer Guide, "Handling errors for an SQS event source in Lambda"), bypassing the backoff,
# and counts as a function error (ConsumerErrorsAlarm).
ANSWER_MARGIN_S = 1
# Each SQS call (a batch's retry delays, a dead-letter move) ends within this: two attempts
# (ingest.clients). The rest of the function's Timeout (template.yaml) is the database's: one attempt
# of a batch fits (a unit test).
SQS_CALL_S = 9

logger = Logger()
# pymysql is not traced: X-Ray records an exception leaving a traced statement with its message,
# and a database's message can quote a row's values (docs/design.md, customer data).
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
settings = ConsumerSettings.from_env()
consumer = Consumer(
    database=Database(settings.database),
    settings=settings,
    sqs=boto3.client("sqs", config=fail_fast_config(within_s=SQS_CALL_S)),
    sqs_call_s=SQS_CALL_S,
)


def _emit_metrics(outcome: BatchOutcome) -> None:
    # Only the counts that are not zero: every alarm and dashboard widget reads their Sum, which a
    # missing zero leaves as it is, while each metric costs CPU on every batch (in add_metric and in
    # the EMF document). A healthy batch then emits Committed alone.
    counts = {
        "Committed": outcome.inserted,
        "DuplicatesIgnored": outcome.duplicates,
        "RecordsFailed": len(outcome.failed),
        "PoisonRecords": len(outcome.poison),
        "DeadLettered": len(outcome.dead_lettered),
        "DatabaseUnavailable": int(outcome.database_unavailable),
    }
    for name, count in counts.items():
        if count:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)


# Nothing returned or raised goes to X-Ray: replies and errors can hold customer data.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    records = [SQSRecord(raw) for raw in event["Records"]]
    deadline = Deadline.after(context.get_remaining_time_in_millis() / 1000 - ANSWER_MARGIN_S)
    outcome = consumer.process(records, deadline)
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
