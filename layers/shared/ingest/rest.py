"""The HTTP edge of the producer and the reader: request bodies in, replies and error replies out.

The API logic (ingest.producer, ingest.reader) raises the errors of ingest.errors; ERROR_STATUS is the
one place that gives each its HTTP status, and error_reply the one body every error gets. (The demo
console's API adds its own errors to the table: ingest_console.api.)
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BaseModel

from ingest.errors import InvalidInput, NotFound, RequestError, Unavailable
from ingest.models import MAX_ATTRIBUTES_DEPTH, MAX_BODY_BYTES, MAX_DOCUMENT_DEPTH, MAX_SAFE_INTEGER


class UnsupportedMediaType(InvalidInput):
    """The body is not sent as JSON."""


class BodyTooLarge(InvalidInput):
    """The body is longer than MAX_BODY_BYTES."""


# (error class, its status) pairs, most specific first: the first class the error is an instance of
# gives its status.
type ErrorStatus = tuple[tuple[type[RequestError], HTTPStatus], ...]
ERROR_STATUS: ErrorStatus = (
    (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (BodyTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (InvalidInput, HTTPStatus.BAD_REQUEST),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Unavailable, HTTPStatus.SERVICE_UNAVAILABLE),
)


def error_reply(
    error: RequestError, statuses: ErrorStatus = ERROR_STATUS
) -> tuple[HTTPStatus, dict[str, dict[str, str]], dict[str, str]]:
    """The status (the first of `statuses` whose class `error` is), body ({"error": {"code", "message",
    "field"?}}) and headers answering `error`."""
    status = next(status for kind, status in statuses if isinstance(error, kind))
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


def register_error_handlers(app: APIGatewayRestResolver, statuses: ErrorStatus = ERROR_STATUS) -> None:
    @app.exception_handler(RequestError)
    def _request_error(error: RequestError) -> Response:
        status, body, headers = error_reply(error, statuses)
        return json_response(status, body, headers=headers)

    # A path no route matches (a path parameter with a character routes do not take, such as '"'):
    # the same error body as every other error, not Powertools' own.
    @app.not_found
    def _no_route(_: Exception) -> Response:
        status, body, headers = error_reply(NotFound("not_found", "no such resource"))
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
        text = raw.decode()
    except UnicodeDecodeError as error:
        raise InvalidInput("malformed_json", f"body is not valid UTF-8: {error}", field="body") from None
    return parse_json(text)


def parse_json(text: str) -> Any:
    """`text` as JSON, or InvalidInput naming the field, for everything that could not be stored as sent.

    Python's json module raises RecursionError on deep nesting, accepts NaN and Infinity, turns numbers
    beyond a double into inf or 0.0 and keeps the last of duplicate keys. Here the nesting is bounded
    on the raw text before parsing, the parser's hooks mark what cannot be stored as written, and one
    walk of the (now shallow) result names the first field that holds such a value.
    """
    _check_nesting(text)
    try:
        document = json.loads(
            text,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_not_a_number,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as error:
        raise InvalidInput("malformed_json", f"body is not valid JSON: {error}", field="body") from None
    if refused := _first_refused(document, ()):
        path, problem = refused
        field = ".".join(path) or "body"
        raise InvalidInput(problem.code, f"{field}: {problem.reason}", field=field)
    return document


@dataclass(frozen=True)
class _Refused:
    """What a parser hook puts in place of a value that cannot be stored as sent."""

    code: str
    reason: str
    key: str | None = None  # the duplicated key, when the refused value is an object


# Strings, skipped whole (escaped quotes included), and the brackets that open and close levels. An
# unterminated string runs to the end of the text, so every quote starts a match and the scan stays
# linear (the parser then refuses the text).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_COLON = re.compile(r"[ \t\n\r]*:")  # after a string: the string was a key


def _check_nesting(text: str) -> None:
    """Refuse more levels of objects and arrays than a valid body has, before a recursive parser sees
    them; the field named is the body's top-level key under which the nesting went too deep."""
    depth = 0
    top_level_key: str | None = None
    for token in _TOKEN.finditer(text):
        symbol = token[0]
        if symbol in "[{":
            depth += 1
            if depth > MAX_DOCUMENT_DEPTH:
                field = top_level_key if top_level_key is not None else "body"
                # The code pydantic's own depth rule gets (ingest.models): one rule, one code.
                raise InvalidInput(
                    "validation_failed",
                    f"{field}: must nest objects and arrays at most {MAX_ATTRIBUTES_DEPTH} levels deep",
                    field=field,
                )
        elif symbol in "]}":
            depth -= 1
        elif depth == 1 and _COLON.match(text, token.end()):
            top_level_key = _string_literal(symbol)


def _string_literal(literal: str) -> str:
    try:
        value = json.loads(literal)
    except json.JSONDecodeError:
        return "body"  # malformed: the parser will say so
    return value if isinstance(value, str) else "body"


def _integer(text: str) -> int | _Refused:
    # Digits are counted before int() runs: a long enough literal makes int() raise (Python's limit
    # on integer string conversion), and one a little shorter costs time for nothing.
    if len(text.lstrip("-")) > len(str(MAX_SAFE_INTEGER)) or abs(value := int(text)) > MAX_SAFE_INTEGER:
        return _Refused(
            "number_out_of_range", f"integers must be within -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}"
        )
    return value


def _float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        return _Refused("number_out_of_range", f"{text[:32]} is beyond the range of a 64-bit float")
    try:
        exact = Decimal(text)
    except ArithmeticError:  # an exponent of more digits than decimal takes (0e99999999999999999999)
        return _Refused("number_out_of_range", f"{text[:32]} has an exponent beyond any 64-bit float's")
    # Equal as numbers to what a double holds (1.50 is 1.5), or the stored value would differ.
    if Decimal(repr(value)) != exact:
        return _Refused("number_too_precise", f"{text[:32]} has more precision than a 64-bit float holds")
    return value


def _not_a_number(text: str) -> _Refused:
    return _Refused("not_a_number", f"{text} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Refused:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Refused("duplicate_key", "the key appears more than once in its object", key=key)
        seen.add(key)
    return dict(pairs)


def _first_refused(value: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], _Refused] | None:
    """The path and verdict of the first value a hook refused or string SQS cannot carry, if any.
    Recursive: the nesting is bounded by _check_nesting already."""
    if isinstance(value, _Refused):
        return ((*path, value.key) if value.key is not None else path), value
    if isinstance(value, str):
        return (path, _UNSENDABLE_STRING) if not sendable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if not sendable(key):
                return (*path, key), _UNSENDABLE_KEY
            if found := _first_refused(item, (*path, key)):
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _first_refused(item, (*path, str(index))):
                return found
    return None


# The characters an SQS message body may hold (SQS API Reference, SendMessage, MessageBody): anything
# else makes SendMessage fail, every time, so it is refused here with a 400 rather than a 503 per retry.
# Lone surrogates (U+D800 to U+DFFF) are outside it too.
_SQS_UNSENDABLE = re.compile(r"[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_UNSENDABLE_STRING = _Refused(
    "unsupported_character",
    "holds a character SQS does not carry (control characters other than tab, line feed and carriage "
    "return, lone surrogates, U+FFFE, U+FFFF)",
)
_UNSENDABLE_KEY = _Refused(
    "unsupported_character", _UNSENDABLE_STRING.reason.replace("holds", "the key holds")
)


def sendable(text: str) -> bool:
    """Whether every character of `text` may be in an SQS message body."""
    return _SQS_UNSENDABLE.search(text) is None


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
    """Who is calling: the Cognito subject, the IAM principal, or nobody (local stack, no auth).

    Read from the raw event: without an authorizer, or from a test console, pieces of the request
    context are absent or null, which Powertools' accessors do not allow for.
    """
    context = _object_at(event.raw_event, "requestContext")
    subject = _object_at(_object_at(context, "authorizer"), "claims").get("sub")
    user_arn = _object_at(context, "identity").get("userArn")
    return (
        (subject if isinstance(subject, str) and subject else None)
        or _principal(user_arn if isinstance(user_arn, str) else None)
        or "anonymous"
    )


def _object_at(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _principal(user_arn: str | None) -> str | None:
    """An assumed role's ARN without its session name, which changes whenever credentials refresh."""
    if user_arn and ":assumed-role/" in user_arn:
        return user_arn.rsplit("/", 1)[0]
    return user_arn
