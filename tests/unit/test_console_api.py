"""The console's routes (ingest_console.api) over an in-memory backend: routing, validation, error bodies."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import InvalidInput
from ingest.models import MAX_BODY_BYTES, REQUEST_ID_PATTERN
from ingest_console.api import console_app
from ingest_console.contract import (
    MAX_RECONCILE_IDS,
    RUN_ID,
    ConsoleBackend,
    Fault,
    FaultInProgress,
    FaultRun,
    QueueState,
    ReconcileRequest,
    Reconciliation,
    RunSummary,
    Status,
)
from local.testdata import api_event

FAULTS = [
    Fault(name="failover", label="Failover", description="the writer fails", seconds=(1, 5, 60)),
    Fault(name="poison", label="Poison", description="records the database refuses"),
]


class InMemoryBackend:
    """A backend that remembers what it was asked; one fault at a time, as every backend."""

    name: Literal["local", "aws"] = "local"

    def __init__(self) -> None:
        self.started: list[tuple[str, float | None]] = []
        self.status_asked: list[tuple[str | None, datetime | None]] = []
        self.running: FaultRun | None = None

    def faults(self) -> list[Fault]:
        return FAULTS

    def status(self, run_id: str | None, since: datetime | None) -> Status:
        self.status_asked.append((run_id, since))
        return Status(
            backend="local",
            at=datetime(2026, 1, 1, tzinfo=UTC),
            database_writable=True,
            instances=[],
            queue=QueueState(visible=0, in_flight=0, dead_letter=0, oldest_age_s=None),
            fault=self.running,
            events=[],
        )

    def start_fault(self, name: str, seconds: float | None) -> FaultRun:
        if name not in {fault.name for fault in FAULTS}:
            raise InvalidInput("unknown_fault", f"no fault {name}", field="name")
        if self.running is not None:
            raise FaultInProgress("fault_in_progress", f"{self.running.name} is running")
        self.started.append((name, seconds))
        self.running = FaultRun(name=name, seconds=seconds, started_at=datetime.now(UTC))
        return self.running

    def reconcile(self, request: ReconcileRequest) -> Reconciliation:
        committed = [request_id for request_id in request.request_ids if request_id.startswith("c")]
        return Reconciliation(
            committed=committed,
            dead_lettered=[],
            run=RunSummary(
                rows=len(committed),
                distinct_keys=len(committed),
                duplicates=0,
                stale_profiles=0,
                lag_p50_ms=None,
                lag_p99_ms=None,
            ),
        )


@pytest.fixture
def backend() -> InMemoryBackend:
    return InMemoryBackend()


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "console.js").write_text("'use strict';")
    (tmp_path / "notes.md").write_text("not a type the console serves")
    (tmp_path.parent / "secret.txt").write_text("outside the directory")
    return tmp_path


def call(
    backend: ConsoleBackend,
    static_dir: Path,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any] | str, dict[str, Any]]:
    event = api_event(method, path, json.dumps(body) if body is not None else None, headers)
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {key: [value] for key, value in (query or {}).items()} or None
    response = console_app(backend, static_dir).resolve(event, None)  # type: ignore[arg-type]
    content_type = response["multiValueHeaders"]["Content-Type"][0]
    text = response["body"]
    return (
        response["statusCode"],
        json.loads(text) if content_type == "application/json" else text,
        response["multiValueHeaders"],
    )


def test_config_lists_the_backends_faults_and_the_limits(backend, static_dir):
    """GIVEN a backend with two faults WHEN the page asks for its config THEN it gets the backend's name,
    both faults with their lengths, the rate limits and the reconcile batch size."""
    status, body, _ = call(backend, static_dir, "GET", "/console/api/config")
    assert status == 200
    assert body == {
        "backend": "local",
        "faults": [fault.model_dump(mode="json") for fault in FAULTS],
        "rate_limits": [1, 200],
        "reconcile_max_ids": MAX_RECONCILE_IDS,
    }


def test_a_fault_starts_with_the_length_asked_for_or_its_default(backend, static_dir):
    """GIVEN no fault running WHEN failover is asked for 7 s THEN 202 with the run, and the backend
    started it for 7 s; AND a fault without a length starts with none."""
    status, body, _ = call(
        backend, static_dir, "POST", "/console/api/faults", {"name": "failover", "seconds": 7}
    )
    assert status == 202
    assert (body["name"], body["seconds"], body["ended_at"]) == ("failover", 7, None)
    backend.running = None
    call(backend, static_dir, "POST", "/console/api/faults", {"name": "poison"})
    backend.running = None
    call(backend, static_dir, "POST", "/console/api/faults", {"name": "failover"})
    assert backend.started == [("failover", 7), ("poison", None), ("failover", 5)]


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"name": "meteor"}, "name", "unknown_fault"),
        ({"name": "failover", "seconds": 0}, "seconds", "validation_failed"),
        ({"name": "failover", "seconds": 61}, "seconds", "validation_failed"),
        ({"name": "failover", "seconds": "five"}, "seconds", "validation_failed"),
        ({"name": "poison", "seconds": 3}, "seconds", "validation_failed"),
        ({"seconds": 3}, "name", "validation_failed"),
        ({"name": "failover", "force": True}, "force", "validation_failed"),
        (["failover"], "body", "validation_failed"),
    ],
)
def test_a_wrong_fault_request_gets_400_naming_the_field(backend, static_dir, body, field, code):
    """GIVEN a fault request with an unknown name, a length out of range or of the wrong type, or extra
    fields WHEN it is posted THEN 400 with the error body naming the field, and nothing starts."""
    status, reply, _ = call(backend, static_dir, "POST", "/console/api/faults", body)
    assert status == 400
    assert reply["error"]["field"] == field
    assert reply["error"]["code"] == code
    assert backend.started == []


def test_a_fault_while_one_runs_gets_409(backend, static_dir):
    """GIVEN a failover running WHEN another fault is asked for THEN 409 with the error body, and the
    running fault is the only one started."""
    call(backend, static_dir, "POST", "/console/api/faults", {"name": "failover"})
    status, reply, _ = call(backend, static_dir, "POST", "/console/api/faults", {"name": "poison"})
    assert status == 409
    assert reply["error"]["code"] == "fault_in_progress"
    assert backend.started == [("failover", 5)]


def test_a_fault_request_must_be_json(backend, static_dir):
    """GIVEN a fault request sent as text/plain WHEN posted THEN 415 naming the Content-Type."""
    status, reply, _ = call(
        backend,
        static_dir,
        "POST",
        "/console/api/faults",
        {"name": "poison"},
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415
    assert reply["error"]["field"] == "Content-Type"


def test_status_passes_the_run_and_the_time_on(backend, static_dir):
    """GIVEN a run id and a time with its offset WHEN the status is asked THEN the backend gets both,
    parsed, and its status comes back."""
    status, body, _ = call(
        backend,
        static_dir,
        "GET",
        "/console/api/status",
        query={"run_id": "abc123", "since": "2026-01-31T12:00:00Z"},
    )
    assert status == 200
    assert body["backend"] == "local"
    assert backend.status_asked == [("abc123", datetime(2026, 1, 31, 12, tzinfo=UTC))]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"run_id": "AB"}, "run_id"),
        ({"run_id": "abc123;drop"}, "run_id"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-31T12:00:00"}, "since"),  # no offset: which clock?
    ],
)
def test_a_wrong_status_query_gets_400_naming_the_parameter(backend, static_dir, query, field):
    """GIVEN a malformed run id or time WHEN the status is asked THEN 400 naming it, backend not asked."""
    status, reply, _ = call(backend, static_dir, "GET", "/console/api/status", query=query)
    assert status == 400
    assert reply["error"]["field"] == field
    assert backend.status_asked == []


def test_reconcile_answers_for_the_ids_asked(backend, static_dir):
    """GIVEN three request ids, two of them committed WHEN reconciled THEN the two come back as committed."""
    status, body, _ = call(
        backend,
        static_dir,
        "POST",
        "/console/api/reconcile",
        {"run_id": "abc123", "request_ids": ["c1", "x2", "c3"]},
    )
    assert status == 200
    assert body["committed"] == ["c1", "c3"]
    assert body["run"]["rows"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"run_id": "abc123", "request_ids": ["r"] * (MAX_RECONCILE_IDS + 1)}, "request_ids"),
        ({"run_id": "no", "request_ids": []}, "run_id"),
        ({"run_id": "abc123", "request_ids": [1]}, "request_ids.0"),
        ({"request_ids": []}, "run_id"),
    ],
)
def test_a_wrong_reconcile_request_gets_400_naming_the_field(backend, static_dir, body, field):
    """GIVEN too many ids, a malformed run id, an id that is not a string or no run id WHEN reconciled
    THEN 400 naming the field."""
    status, reply, _ = call(backend, static_dir, "POST", "/console/api/reconcile", body)
    assert status == 400
    assert reply["error"]["field"] == field


def test_a_full_reconcile_request_of_the_longest_ids_fits_in_a_request_body(backend, static_dir):
    """GIVEN as many request ids as one reconcile call may carry, each as long as a request id may be,
    and the longest run id WHEN reconciled THEN the request is answered, not refused as too large: the
    page can reconcile a run of any length, a page of ids at a time."""
    body = {"run_id": "a" * 16, "request_ids": ["c" + "x" * 63] * MAX_RECONCILE_IDS}
    assert len(json.dumps(body)) < MAX_BODY_BYTES
    status, reply, _ = call(backend, static_dir, "POST", "/console/api/reconcile", body)
    assert status == 200
    assert len(reply["committed"]) == MAX_RECONCILE_IDS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    run_id=st.one_of(st.text(max_size=20), st.from_regex(RUN_ID, fullmatch=True)),
    request_ids=st.lists(st.one_of(st.text(max_size=70), st.from_regex(REQUEST_ID_PATTERN)), max_size=5),
)
def test_any_reconcile_request_is_answered_or_refused_naming_its_field(
    backend, static_dir, run_id, request_ids
):
    """GIVEN any text as the run id and as request ids WHEN reconciled THEN the request is answered
    when every part is well formed, and otherwise refused with 400 naming the first bad part: never a
    500, and never an answer for a malformed id."""
    status, reply, _ = call(
        backend, static_dir, "POST", "/console/api/reconcile", {"run_id": run_id, "request_ids": request_ids}
    )
    bad_ids = [
        i for i, request_id in enumerate(request_ids) if not re.fullmatch(REQUEST_ID_PATTERN, request_id)
    ]
    if RUN_ID.fullmatch(run_id) and not bad_ids:
        assert status == 200
    else:
        assert status == 400
        assert reply["error"]["field"] in {"run_id", *(f"request_ids.{i}" for i in bad_ids)}


def test_the_page_and_its_files_are_served_with_their_types(backend, static_dir):
    """GIVEN a static directory WHEN the page and its script are asked THEN each comes with its type
    and no-cache, so a new deployment's page is used at once."""
    status, page, headers = call(backend, static_dir, "GET", "/console/")
    assert (status, page) == (200, "<!doctype html><title>console</title>")
    assert headers["Content-Type"] == ["text/html; charset=utf-8"]
    assert headers["Cache-Control"] == ["no-cache"]
    status, script, headers = call(backend, static_dir, "GET", "/console/static/console.js")
    assert (status, script, headers["Content-Type"]) == (
        200,
        "'use strict';",
        ["text/javascript; charset=utf-8"],
    )


@pytest.mark.parametrize("name", ["missing.js", "notes.md", "..%2Fsecret.txt", "../secret.txt"])
def test_only_the_directorys_servable_files_are_served(backend, static_dir, name):
    """GIVEN a name that is absent, of a type the console does not serve, or outside the directory WHEN
    asked THEN 404 with the error body."""
    status, reply, _ = call(backend, static_dir, "GET", f"/console/static/{name}")
    assert status == 404
    assert reply["error"]["code"] == "not_found"


def test_an_unknown_console_path_gets_the_error_body(backend, static_dir):
    """GIVEN a path no route has WHEN asked THEN 404 with the API's error body."""
    status, reply, _ = call(backend, static_dir, "GET", "/console/api/nothing")
    assert status == 404
    assert reply["error"]["code"] == "not_found"


def test_the_page_without_its_slash_is_sent_to_it_on_either_backend(backend, static_dir):
    """GIVEN the console's routes (the same on AWS and on the local stack)
    WHEN the page's address is asked without its final slash (the page's links are relative to /console/)
    THEN 301 to console/, while /console/ itself is the page."""
    redirect = console_app(backend, static_dir).resolve(api_event("GET", "/console"), None)  # type: ignore[arg-type]
    assert (redirect["statusCode"], redirect["multiValueHeaders"]["Location"]) == (301, ["console/"])
    status, page, _ = call(backend, static_dir, "GET", "/console/")
    assert (status, page) == (200, "<!doctype html><title>console</title>")


def test_the_page_runs_only_its_own_files_and_cannot_be_framed(backend, static_dir):
    """GIVEN the console WHEN its page or one of its files is served THEN the content security policy
    allows scripts, styles and fetches from its own origin only, and no site may frame the page (its
    buttons cause faults)."""
    for path in ("/console/", "/console/static/console.js"):
        _, _, headers = call(backend, static_dir, "GET", path)
        policy = dict(
            directive.split(" ", 1) for directive in headers["Content-Security-Policy"][0].split("; ")
        )
        assert policy["default-src"] == "'none'"
        assert (policy["script-src"], policy["style-src"], policy["connect-src"]) == ("'self'",) * 3
        assert policy["frame-ancestors"] == "'none'"
        assert headers["X-Content-Type-Options"] == ["nosniff"]
