"""HTTP front end: the SQS JSON protocol over a threading HTTP/1.1 server.

The handler reads just what SQS clients send (POST, Content-Length, X-Amz-Target, keep-alive)
instead of BaseHTTPRequestHandler's full header parsing, which cost more per call than the
queue work itself.
"""

import itertools
import json
import logging
import socketserver
import threading
from http import HTTPStatus
from http.server import ThreadingHTTPServer

from local.sqs.core import QueueStore
from local.sqs.errors import SqsError

CONTENT_TYPE = b"application/x-amz-json-1.0"
TARGET_PREFIX = "AmazonSQS."
HOUSEKEEPING_INTERVAL_S = 0.1
MAX_LINE = 65536
MAX_HEADERS = 100
MAX_CONTENT_LENGTH_DIGITS = 9  # bodies up to a gigabyte; SQS's largest request is a few MiB
LOGGER = logging.getLogger(__name__)


class SqsRequestHandler(socketserver.StreamRequestHandler):
    """Serves one keep-alive connection: requests one after another until the client closes."""

    server: "SqsServer"
    request_ids = itertools.count(1)

    def handle(self) -> None:
        while self._serve_one():
            pass

    def _serve_one(self) -> bool:
        request_line = self.rfile.readline(MAX_LINE)
        if not request_line.strip():
            return False
        method = request_line.split(b" ", 1)[0]
        headers = {}
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        keep_alive = headers.get(b"connection", b"").lower() != b"close" and request_line.endswith(b"1.1\r\n")
        length = headers.get(b"content-length", b"0")
        if not (length.isdigit() and len(length) <= MAX_CONTENT_LENGTH_DIGITS):
            # Without a length the body cannot be told from the next request: answer, then close.
            status, payload, extra = error_reply(
                SqsError("SerializationException", "The request has no valid Content-Length.")
            )
            keep_alive = False
        elif method == b"POST":
            body = self.rfile.read(int(length))
            status, payload, extra = self._dispatch(headers.get(b"x-amz-target", b"").decode("latin-1"), body)
        else:  # any GET is a readiness probe
            self.rfile.read(int(length))
            status, payload, extra = 200, b'{"status":"ok"}', b""
        reason = HTTPStatus(status).phrase.encode()
        self.wfile.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nx-amzn-RequestId: %d\r\n%s%s\r\n%s"
            % (
                status,
                reason,
                CONTENT_TYPE,
                len(payload),
                next(self.request_ids),
                extra,
                b"" if keep_alive else b"Connection: close\r\n",
                payload,
            )
        )
        return keep_alive

    def _dispatch(self, target: str, body: bytes) -> tuple[int, bytes, bytes]:
        try:
            if not target.startswith(TARGET_PREFIX):
                raise SqsError(
                    "InvalidAction", "Only the SQS JSON protocol (X-Amz-Target: AmazonSQS.*) is served."
                )
            try:
                params = json.loads(body or b"{}")
            except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep to parse
                raise SqsError("SerializationException", "The request body is not valid JSON.") from None
            reply = self.server.store.handle(target[len(TARGET_PREFIX) :], params)
            return 200, json.dumps(reply).encode(), b""
        except SqsError as error:
            return error_reply(error)
        except Exception:  # the last resort: a reply instead of a dropped connection
            LOGGER.exception("internal error serving %s", target)
            return error_reply(SqsError("InternalError", "The request could not be processed.", status=500))


def error_reply(error: SqsError) -> tuple[int, bytes, bytes]:
    """Status, JSON body and extra header lines of an error reply. The legacy code in the
    x-amzn-query-error header is what botocore shows as the error's Code."""
    fault = b"Receiver" if error.status >= 500 else b"Sender"
    extra = b"x-amzn-query-error: %s;%s\r\n" % (error.legacy_code.encode(), fault)
    return error.status, json.dumps(error.to_json()).encode(), extra


class SqsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, database: str, region: str = "us-east-1") -> None:
        super().__init__((host, port), SqsRequestHandler)
        self.store = QueueStore(database, base_url=f"http://{host}:{self.server_address[1]}", region=region)
        self._stopping = threading.Event()
        self._housekeeper = threading.Thread(target=self._housekeep, name="sqs-housekeeping", daemon=True)
        self._housekeeper.start()

    @property
    def endpoint(self) -> str:
        return self.store.base_url

    def _housekeep(self) -> None:
        while not self._stopping.wait(HOUSEKEEPING_INTERVAL_S):
            self.store.run_due_work()
            self.store.checkpoint()

    def server_close(self) -> None:
        self._stopping.set()
        self._housekeeper.join()
        super().server_close()
        self.store.close()
