"""The HTTP edge of the producer and the reader: request bodies in, replies and error replies out.

The API logic (ingest.producer, ingest.reader) raises the errors of ingest.api; ERROR_STATUS is the
one place that gives each its HTTP status, and error_reply the one body every error gets.
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from ingest.api import InvalidInput, NotFound, RequestError, Unavailable
from ingest.models import MAX_BODY_BYTES


class UnsupportedMediaType(InvalidInput):
    """The body is not sent as JSON."""


class BodyTooLarge(InvalidInput):
    """The body is longer than MAX_BODY_BYTES."""


# Most specific first: the first class the error is an instance of gives its status.
ERROR_STATUS: tuple[tuple[type[RequestError], HTTPStatus], ...] = (
    (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (BodyTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Unavailable, HTTPStatus.SERVICE_UNAVAILABLE),
)


def error_reply(error: RequestError) -> tuple[HTTPStatus, dict[str, dict[str, str]], dict[str, str]]:
    """The status, body ({"error": {"code", "message", "field"?}}) and headers answering `error`."""
    status = next(status for kind, status in ERROR_STATUS if isinstance(error, kind))
    body = {"code": error.code, "message": error.message}
    if isinstance(error, InvalidInput):
        body["field"] = error.field
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Unavailable) else {}
    return status, {"error": body}, headers


def json_response(
    status: HTTPStatus, body: BaseModel | dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    text = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=text, headers=headers
    )


def register_error_handlers(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(RequestError)
    def _request_error(error: RequestError) -> Response:
        status, body, headers = error_reply(error)
        return json_response(status, body, headers=headers)


def json_document(body: str | None, is_base64_encoded: bool | None, content_type: str | None) -> Any:
    """The request's JSON body, decoded: a JSON content type, valid base64 if so sent, at most
    MAX_BODY_BYTES, valid JSON."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "unsupported_media_type",
            f"Content-Type must be application/json, got {content_type or 'none'}",
            field="Content-Type",
        )
    raw = _body_bytes(body, is_base64_encoded)
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLarge(
            "body_too_large", f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", field="body"
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput("malformed_json", f"body is not valid JSON: {error}", field="body") from None


def _body_bytes(body: str | None, is_base64_encoded: bool | None) -> bytes:
    if body is None:
        raise InvalidInput("missing_body", "a JSON body is required", field="body")
    if not is_base64_encoded:
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("malformed_body", "body is not valid base64", field="body") from None


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
