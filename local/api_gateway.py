"""An HTTP server that turns requests into API Gateway REST proxy events, as `sam local start-api` does.

No authorizer runs locally (as with `sam local start-api`); the handlers see an anonymous caller.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.errors import API_GATEWAY_TIMEOUT_S
from local.lambda_runtime import Handler, InvocationTimedOut, LambdaContext
from local.servers import ensure_port_free
from local.template import LOCAL_ACCOUNT

log = logging.getLogger("local.api")

STAGE = "local"
TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # API Gateway resource path, e.g. /customers/{customer_id}
    function_name: str
    handler: Handler
    timeout_s: float = API_GATEWAY_TIMEOUT_S

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.resource) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


def proxy_event(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    resource: str,
    path_parameters: dict[str, str],
    source_ip: str,
) -> dict:
    """The event API Gateway's Lambda proxy integration sends (REST API, payload format 1.0)."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value  # API Gateway keeps the last value of a repeated header
        multi.setdefault(name, []).append(value)
    query_multi = parse_qs(query, keep_blank_values=True)
    content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
    # A body that is not UTF-8 cannot travel as text: it goes base64-encoded, as binary media does.
    is_text = not body or (content_type.startswith(TEXT_TYPES) and _is_utf8(body))
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {key: values[-1] for key, values in query_multi.items()} or None,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{STAGE}{path}",
            "accountId": LOCAL_ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": single.get("User-Agent") or single.get("user-agent"),
                "user": None,
            },
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": (body.decode() if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


class _HttpServer(ThreadingHTTPServer):
    # The kernel's largest accept queue (http.server's default is 5): API Gateway does not refuse a
    # burst of connections, so the shim must not answer one with resets.
    request_queue_size = socket.SOMAXCONN
    daemon_threads = True


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


class ApiGateway:
    def __init__(self, port: int, routes: list[Route], host: str = "127.0.0.1"):
        self.port = port
        self.host = host
        self.routes = routes
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        ensure_port_free(self.port, "the API (HTTP shim)")
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                gateway._handle(self)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the routes (API Gateway answers 403 for one it has no resource
                # for), not http.server's 501 for the methods it has no do_ for.
                if name.startswith("do_"):
                    return self.do_GET
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        self._server = _HttpServer((self.host, self.port), RequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        for route in self.routes:
            parameters = route.match(request.command, parts.path)
            if parameters is not None:
                break
        else:
            # What API Gateway answers for a path or method it has no resource for.
            self._send(
                request,
                403,
                {"Content-Type": "application/json"},
                b'{"message":"Missing Authentication Token"}',
            )
            return
        event = proxy_event(
            request.command,
            parts.path,
            parts.query,
            list(request.headers.items()),
            body,
            route.resource,
            parameters,
            request.client_address[0],
        )
        context = LambdaContext(function_name=route.function_name, timeout_s=route.timeout_s)
        started = time.monotonic()
        try:
            response = route.handler(event, context)
        except InvocationTimedOut:
            self._send_timeout(request)
            return
        except Exception as error:
            # API Gateway answers 502 when the function fails.
            log.warning("%s failed: %s: %s", route.function_name, type(error).__name__, error)
            self._send(
                request, 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
            )
            return
        if time.monotonic() - started > route.timeout_s:
            self._send_timeout(request)
            return
        self._send_proxy_response(request, response)

    def _send_timeout(self, request: BaseHTTPRequestHandler) -> None:
        # What API Gateway answers when the integration runs past its timeout.
        self._send(
            request, 504, {"Content-Type": "application/json"}, b'{"message": "Endpoint request timed out"}'
        )

    def _send_proxy_response(self, request: BaseHTTPRequestHandler, response: dict) -> None:
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        body = response.get("body") or ""
        payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        self._send(request, int(response.get("statusCode", 200)), headers, payload)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        try:
            request.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    request.send_header(name, value)
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("the client left before the answer (%d)", status)
