"""Error replies of the API: one JSON shape, a status that says whose fault it was."""

from __future__ import annotations

from http import HTTPStatus

# API Gateway ends an integration after this long and answers 504: every API function must answer
# sooner (the producer's SQS client, the local stack's gateway and the drill's baselines use it).
API_GATEWAY_TIMEOUT_S = 29
# What a 503 tells the client to wait before retrying (the producer's and the reader's).
RETRY_AFTER_SECONDS = 2


class ApiError(Exception):
    """Raised by the API logic; the handlers turn it into {"error": {...}} with its status."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        error = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}
