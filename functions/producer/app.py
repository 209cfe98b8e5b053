"""POST /customers: validate, enqueue to the FIFO queue, answer 202 only once SQS has the message."""

import os
from http import HTTPStatus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from ingest.api import ApiError
from ingest.producer import Producer, parse_customer
from ingest.rest import caller_of, json_response, register_error_handlers

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # only what this function calls: fewer imports at cold start
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)
# Fail fast when SQS does not answer: one retry, then 503 with Retry-After, well inside API Gateway's
# 29 s, instead of boto3's default of several attempts (seconds per request while SQS is away, which
# piles up concurrent executions until requests time out with a 504 the client cannot retry safely).
SQS_CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5)
producer = Producer(queue_url=os.environ["QUEUE_URL"], sqs=boto3.client("sqs", config=SQS_CLIENT_CONFIG))


@app.post("/customers")
@tracer.capture_method
def post_customer():
    event = app.current_event
    try:
        customer = parse_customer(event.body, event.is_base64_encoded, event.headers.get("content-type"))
        accepted = producer.accept(customer, event.headers.get("idempotency-key"), caller_of(event))
    except ApiError as error:
        metrics.add_metric(
            name="QueueUnavailable" if error.status >= 500 else "Rejected", unit=MetricUnit.Count, value=1
        )
        raise
    metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    logger.debug("accepted", request_id=accepted.request_id)  # counted by the Accepted metric
    return json_response(HTTPStatus.ACCEPTED, accepted)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return app.resolve(event, context)
