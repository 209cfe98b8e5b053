"""What the end-to-end tests do as the API's client: call it over HTTP and wait for what it promises."""

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


def call(
    url: str, method: str = "GET", body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request(
            method,
            parts.path,
            body=json.dumps(body) if body is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def wait_for[T](found: Callable[[], T | None], timeout: float = 30) -> T:
    """The first value `found` returns that is not None, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def committed_record(url: str) -> dict[str, Any] | None:
    """GET /records/{request_id}: the record once it is committed, None while it is not there yet."""
    status, body = call(url)
    return body if status == 200 else None
