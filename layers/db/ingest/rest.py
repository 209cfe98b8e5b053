"""Glue between Powertools' REST resolver and the API logic, shared by the producer and the reader."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from ingest.api import ApiError


def json_response(
    status: HTTPStatus, body: BaseModel | dict[str, Any], headers: dict[str, str] | None = None
):
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=text, headers=headers
    )


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(ApiError)
    def _api_error(error: ApiError):
        return json_response(error.status, error.body(), headers=error.headers)


def caller_of(event: APIGatewayProxyEvent) -> str:
    """Who is calling: the Cognito subject, the IAM principal, or nobody (local stack, no auth)."""
    context = event.request_context
    claims = (context.authorizer.raw_event or {}).get("claims") or {}
    return claims.get("sub") or _principal(context.identity.user_arn) or "anonymous"


def _principal(user_arn: str | None) -> str | None:
    """An assumed role's ARN without its session name, which changes whenever credentials refresh."""
    if user_arn and ":assumed-role/" in user_arn:
        return user_arn.rsplit("/", 1)[0]
    return user_arn
