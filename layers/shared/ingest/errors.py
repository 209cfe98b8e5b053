"""What the API logic can say went wrong, in its own terms; ingest.rest turns each into an HTTP reply."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

# API Gateway ends an integration after this long and answers 504: every API function's timeout is
# shorter (tests compare them); the local stack's gateway and the drill's baselines apply it.
API_GATEWAY_TIMEOUT_S = 29
# What a 503 tells the client to wait before retrying (the producer's and the reader's).
RETRY_AFTER_SECONDS = 2


class RequestError(Exception):
    """A request the API cannot fulfil: `code` names the case for clients, `message` explains it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidInput(RequestError):
    """The request itself is wrong; `field` names the part of it (a body field, a header, a path id)."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(code, message)
        self.field = field


class NotFound(RequestError):
    """What the request names does not exist (yet)."""


class Unavailable(RequestError):
    """A dependency is away; the same request may succeed after `retry_after_s` seconds."""

    def __init__(self, code: str, message: str, retry_after_s: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


def validated[M: BaseModel](model: type[M], document: Any) -> M:
    """`document` (a request's JSON) as `model`; InvalidInput names the first wrong field."""
    if not isinstance(document, dict):
        raise InvalidInput("validation_failed", "body must be a JSON object", field="body")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput("validation_failed", f"{field}: {first['msg']}", field=field) from None
