"""GET /customers/{customer_id} and GET /records/{request_id}, read through the proxy."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.clients import forget_credentials
from ingest.config import ReaderSettings
from ingest.connection import Database, forget_token_signer
from ingest.reader import Reader
from ingest.rest import json_response, register_error_handlers
from ingest.snapstart import register_after_restore, reseed_random

logger = Logger()
# pymysql is not traced: X-Ray records an exception leaving a traced statement with its message,
# and a database's message can quote a row's values (docs/design.md, customer data).
tracer = Tracer(auto_patch=False)  # it calls nothing else worth a subsegment
metrics = Metrics()
app = APIGatewayRestResolver()
register_error_handlers(app)
reader = Reader(Database(ReaderSettings.from_env().database))


@register_after_restore
def after_restore() -> None:
    """SnapStart: no connection or IAM token signer carried over from the snapshot into this environment."""
    reseed_random()
    reader.database.discard()
    forget_credentials()
    forget_token_signer()


# Nothing returned or raised goes to X-Ray: replies and errors can hold customer data.
@app.get("/customers/<customer_id>")
@tracer.capture_method(capture_response=False, capture_error=False)
def get_customer(customer_id: str) -> Response:
    return json_response(HTTPStatus.OK, reader.customer(customer_id))


@app.get("/records/<request_id>")
@tracer.capture_method(capture_response=False, capture_error=False)
def get_record(request_id: str) -> Response:
    return json_response(HTTPStatus.OK, reader.record(request_id))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="Reads", unit=MetricUnit.Count, value=1)
    return app.resolve(event, context)
