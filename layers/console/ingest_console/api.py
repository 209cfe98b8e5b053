"""The demo console's HTTP side: the page, its static files and its JSON API, over any ConsoleBackend.

One resolver for both backends: the console function's handler on AWS (with the AWS backend) and the
local stack's API shim (with the local one) resolve their events through `console_app`.

    GET  /console/                      the page (/console, without the slash, is redirected to it)
    GET  /console/static/<name>         its JavaScript, CSS, charting library and licence
    GET  /console/api/config            the backend, its faults, the rate limits, the reconcile batch size
    GET  /console/api/status            ?run_id=..&since=ISO8601: roles, queue, counts, events
    POST /console/api/faults            {"name", "seconds"?} -> 202 FaultRun; 400 unknown, 409 one runs
    POST /console/api/reconcile         ReconcileRequest -> Reconciliation
"""

from __future__ import annotations

import re
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from pydantic import BaseModel, ConfigDict

from ingest.errors import InvalidInput, NotFound, validated
from ingest.rest import ERROR_STATUS, json_document, json_response, register_error_handlers
from ingest_console.contract import (
    MAX_RECONCILE_IDS,
    RATE_LIMITS_RPS,
    RUN_ID,
    Conflict,
    ConsoleBackend,
    Fault,
    ReconcileRequest,
)

# The pipeline's errors, and the console's own: a fault refused while one runs or the cluster is busy.
CONSOLE_ERROR_STATUS = ((Conflict, HTTPStatus.CONFLICT), *ERROR_STATUS)
# What the static directory may serve, by suffix; any other file in it is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def security_headers(connect_to: tuple[str, ...] = ()) -> dict[str, str]:
    """The page runs only its own files and talks only to its origin and `connect_to` (the sign-in
    domain's token endpoint on AWS); no other site may frame it (it has buttons that cause faults)."""
    policy = "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {' '.join(("'self'", *connect_to))}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The files change with each deployment: the browser asks again rather than run stale code.
        "Cache-Control": "no-cache",
    }


class FaultRequest(BaseModel):
    """POST /console/api/faults: which fault, and for how long when it takes a length."""

    model_config = ConfigDict(extra="forbid")

    name: str
    seconds: float | None = None


class ConsoleConfig(BaseModel):
    backend: str
    faults: list[Fault]
    rate_limits: tuple[int, int]  # (min, max) requests per second
    reconcile_max_ids: int


def console_app(
    backend: ConsoleBackend, static_dir: Path, connect_to: tuple[str, ...] = ()
) -> APIGatewayRestResolver:
    """The console's routes over `backend`, serving the page's files from `static_dir`; the page may
    also fetch from the origins in `connect_to`."""
    app = APIGatewayRestResolver()
    register_error_handlers(app, CONSOLE_ERROR_STATUS)
    app.use(middlewares=[_page_with_slash])
    # Listed once: only these files are served, so no name can reach outside the directory.
    headers = security_headers(connect_to)
    static_files = {
        path.name: path
        for path in static_dir.iterdir()
        if path.is_file() and path.suffix in CONTENT_TYPES and _STATIC_NAME.fullmatch(path.name)
    }

    @app.get("/console/")
    def page() -> Response:
        return static("index.html")

    @app.get("/console/static/<name>")
    def static(name: str) -> Response:
        path = static_files.get(name)
        if path is None:
            raise NotFound("not_found", f"no static file {name!r}")
        return _file_response(path, headers)

    @app.get("/console/api/config")
    def config() -> Response:
        return json_response(
            HTTPStatus.OK,
            ConsoleConfig(
                backend=backend.name,
                faults=backend.faults(),
                rate_limits=RATE_LIMITS_RPS,
                reconcile_max_ids=MAX_RECONCILE_IDS,
            ),
        )

    @app.get("/console/api/status")
    def status() -> Response:
        run_id = app.current_event.get_query_string_value("run_id")
        if run_id is not None and not RUN_ID.fullmatch(run_id):
            raise InvalidInput("invalid_run_id", f"run_id must match {RUN_ID.pattern}", field="run_id")
        since = _timestamp(app.current_event.get_query_string_value("since"))
        return json_response(HTTPStatus.OK, backend.status(run_id, since))

    @app.post("/console/api/faults")
    def start_fault() -> Response:
        request = validated(FaultRequest, _body(app))
        seconds = _fault_length(request, {fault.name: fault for fault in backend.faults()})
        return json_response(HTTPStatus.ACCEPTED, backend.start_fault(request.name, seconds))

    @app.post("/console/api/reconcile")
    def reconcile() -> Response:
        request = validated(ReconcileRequest, _body(app))
        return json_response(HTTPStatus.OK, backend.reconcile(request))

    return app


def _page_with_slash(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """The page's links are relative to /console/: an address without the slash is sent there. (API
    Gateway hands the path as asked; the resolver routes both spellings to the page.)"""
    if router.current_event.path == "/console":
        return Response(status_code=HTTPStatus.MOVED_PERMANENTLY, headers={"Location": "console/"})
    return next_middleware(router)


def _body(app: APIGatewayRestResolver) -> object:
    event = app.current_event
    return json_document(event.body, event.is_base64_encoded, event.headers.get("content-type"))


def _fault_length(request: FaultRequest, faults: dict[str, Fault]) -> float | None:
    """The fault's length in seconds: the one asked for, within the fault's range, or its default."""
    fault = faults.get(request.name)
    if fault is None:
        raise InvalidInput(
            "unknown_fault", f"name: no fault {request.name!r}; one of {', '.join(faults)}", field="name"
        )
    if fault.seconds is None:
        if request.seconds is not None:
            raise InvalidInput("validation_failed", f"seconds: {fault.name} takes no length", field="seconds")
        return None
    low, default, high = fault.seconds
    if request.seconds is None:
        return default
    if not low <= request.seconds <= high:
        raise InvalidInput(
            "validation_failed", f"seconds: {fault.name} lasts {low} to {high} s", field="seconds"
        )
    return request.seconds


def _timestamp(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            "invalid_timestamp",
            "since must be an ISO 8601 time with its offset (2026-01-31T12:00:00Z)",
            "since",
        )
    return moment


def _file_response(path: Path, headers: dict[str, str]) -> Response:
    return Response(
        status_code=HTTPStatus.OK,
        content_type=CONTENT_TYPES[path.suffix],
        body=path.read_text(),
        headers=headers,
    )
