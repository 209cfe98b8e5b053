"""POST /customers: validate, enqueue to the FIFO queue, answer 202 only once SQS has the message."""

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.clients import aws_client, fail_fast_config, forget_credentials
from ingest.config import ProducerSettings
from ingest.errors import RequestError, Unavailable
from ingest.producer import Producer, parse_customer
from ingest.rest import caller_of, json_document, json_response, register_error_handlers
from ingest.snapstart import register_after_restore, reseed_random

if TYPE_CHECKING:  # boto3-stubs' types: development only, not deployed
    from mypy_boto3_sqs import SQSClient

# The SQS call ends within SQS_CALL_S (its client's attempts and timeouts, ingest.clients), leaving
# ANSWER_MARGIN_S to answer 503 with Retry-After: both fit in the function's Timeout in template.yaml
# (a unit test), itself well inside API Gateway's 29 s.
SQS_CALL_S = 9
ANSWER_MARGIN_S = 1

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # only what this function calls: fewer imports at cold start
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)
settings = ProducerSettings.from_env()


def sqs_client() -> "SQSClient":
    # Fail fast when SQS does not answer: a 503 with Retry-After before the function times out, instead
    # of boto3's default of several attempts (seconds per request while SQS is away, which piles up
    # concurrent executions until requests time out with a 502/504 the client cannot retry safely).
    return aws_client("sqs", config=fail_fast_config(within_s=SQS_CALL_S))


producer = Producer(queue_url=settings.queue_url, sqs=sqs_client())


@register_after_restore
def after_restore() -> None:
    """SnapStart: a client of this environment's own, signing with the credentials Lambda gives it now.

    Request ids made from an Idempotency-Key stay the same in every environment on purpose
    (ingest.producer.IDEMPOTENCY_NAMESPACE is a constant): a retry must name the same request.
    """
    reseed_random()
    forget_credentials()
    producer.sqs = sqs_client()


# Nothing returned or raised goes to X-Ray: replies and errors can hold customer data.
@app.post("/customers")
@tracer.capture_method(capture_response=False, capture_error=False)
def post_customer() -> Response:
    event = app.current_event
    try:
        document = json_document(event.body, event.is_base64_encoded, event.headers.get("content-type"))
        customer = parse_customer(document)
        accepted = producer.accept(customer, event.headers.get("idempotency-key"), caller_of(event))
    except RequestError as error:
        metrics.add_metric(
            name="QueueUnavailable" if isinstance(error, Unavailable) else "Rejected",
            unit=MetricUnit.Count,
            value=1,
        )
        raise
    metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    logger.debug("accepted", request_id=accepted.request_id)  # counted by the Accepted metric
    return json_response(HTTPStatus.ACCEPTED, accepted)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
