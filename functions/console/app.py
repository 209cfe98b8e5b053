"""The demo console on a deployed stack: its page and JSON API (ingest_console.api) over the AWS backend
(ingest_console.aws). API Gateway's Cognito authorizer has checked the access token on /console/api/*;
this function also requires the console-operators group in it."""

from http import HTTPStatus
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.clients import fail_fast_config
from ingest.rest import json_response
from ingest_console.api import console_app
from ingest_console.aws import AwsBackend
from ingest_console.config import ConsoleSettings

OPERATORS_GROUP = "console-operators"
API_PREFIX = "/console/api/"
STATIC_DIR = Path(__file__).with_name("static")
# One attempt per AWS call, a few seconds at most: the page asks again within a second anyway.
AWS_CALLS = fail_fast_config(within_s=4)

logger = Logger()
# pymysql is not traced: X-Ray records an exception leaving a traced statement with its message,
# and a database's message can quote a row's values (docs/design.md, customer data).
tracer = Tracer(patch_modules=("botocore",))
settings = ConsoleSettings.from_env()
backend = AwsBackend(settings, boto3.client("rds", config=AWS_CALLS), boto3.client("sqs", config=AWS_CALLS))
# The page exchanges its sign-in code for tokens at the sign-in domain's token endpoint.
app = console_app(backend, STATIC_DIR, connect_to=(f"https://{settings.sign_in_domain}",))


@app.get("/console/config.json")
def sign_in_settings() -> Response:
    """What the page needs to sign a person in (public: no secret in it). The address Cognito sends the
    person back to is the page's own, as ConsoleClient's CallbackURLs has it."""
    context = app.current_event.request_context
    return json_response(
        HTTPStatus.OK,
        {
            "cognito_domain": settings.sign_in_domain,
            "client_id": settings.client_id,
            "scopes": "openid customers/write customers/read",
            "redirect_uri": f"https://{context.domain_name}/{context.stage}/console/",
        },
    )


def groups_of(event: dict[str, Any]) -> set[str]:
    """The cognito:groups claim of the authorizer's token. API Gateway passes claims as strings; a list
    of groups arrives as "a,b" (or "[a b]"), a single group as its name."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    claims = authorizer.get("claims") if isinstance(authorizer, dict) else None
    value = claims.get("cognito:groups") if isinstance(claims, dict) else None
    if isinstance(value, list):
        return {str(group) for group in value}
    if not isinstance(value, str):
        return set()
    return {group for group in value.strip("[]").replace(",", " ").split() if group}


def operators_only(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    if router.current_event.path.startswith(API_PREFIX) and OPERATORS_GROUP not in groups_of(
        router.current_event.raw_event
    ):
        logger.warning("console request refused: not in the operators group", path=router.current_event.path)
        return json_response(
            HTTPStatus.FORBIDDEN,
            {
                "error": {
                    "code": "not_a_console_operator",
                    "message": f"the console is for members of the {OPERATORS_GROUP} group",
                }
            },
        )
    return next_middleware(router)


app.use(middlewares=[operators_only])


# Nothing returned or raised goes to X-Ray: replies and errors can hold customer data.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
