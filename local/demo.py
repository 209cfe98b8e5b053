"""`make demo`: the local stack with the demo console on its API, until Ctrl-C.

    python -m local.demo             # start everything, print the URLs, Ctrl-C stops it all

The composition root of the local stack: the Stack (local.stack), the console's backend for it
(local.console, whose faults are local.faults) and the console's routes on the stack's API shim.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from ingest_console.api import console_app
from local.api_gateway import Route
from local.console import LocalConsole
from local.lambda_runtime import LambdaContext
from local.stack import APP_USER, DATABASE, Stack, StackOptions, configure_logging
from local.template import REPO_ROOT

log = logging.getLogger("local.demo")

# The console's page and scripts: the console function's files, served by the API shim too.
CONSOLE_STATIC_DIR = REPO_ROOT / "functions" / "console" / "static"
CONSOLE_FUNCTION = "ConsoleFunction"
CONSOLE_RESOURCES = (
    ("GET", "/console"),  # the resolver sends it to /console/, as on AWS
    ("GET", "/console/"),
    ("GET", "/console/static/{name}"),
    ("GET", "/console/api/config"),
    ("GET", "/console/api/status"),
    ("POST", "/console/api/faults"),
    ("POST", "/console/api/reconcile"),
)


class Demo:
    """A local stack serving the demo console, handled in this process: its faults act on the stack."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.stack = Stack(options)
        self.console: LocalConsole | None = None

    @property
    def console_url(self) -> str:
        return f"{self.stack.api.url}/console/"

    def start(self) -> None:
        self.stack.start()
        try:
            self.console = LocalConsole(self.stack)
            self.stack.add_routes(console_routes(self.console))
        except BaseException:
            self.stack.stop()
            raise
        log.info("the demo console at %s", self.console_url)

    def stop(self) -> None:
        """The console's running fault ends first (it would start a server again), then the stack stops."""
        try:
            if self.console is not None:
                self.console.close()
        finally:
            self.stack.stop()


def console_routes(console: LocalConsole) -> list[Route]:
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        # A resolver per request: it keeps the current event on itself, and the shim serves
        # requests in parallel threads (Lambda gives each environment one request at a time).
        app = console_app(console, CONSOLE_STATIC_DIR)
        # The local context carries the attributes Powertools reads; it is not Powertools' class.
        return app.resolve(event, context)  # type: ignore[arg-type]

    return [Route(method, path, CONSOLE_FUNCTION, handler) for method, path in CONSOLE_RESOURCES]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the customer-ingest pipeline locally (make demo).")
    defaults = StackOptions()
    parser.add_argument("--api-port", type=int, default=defaults.api_port)
    parser.add_argument("--sqs-port", type=int, default=defaults.sqs_port)
    parser.add_argument("--proxy-port", type=int, default=defaults.proxy_port)
    parser.add_argument("--writer-port", type=int, default=defaults.writer_port)
    parser.add_argument("--replica-port", type=int, default=defaults.replica_port)
    parser.add_argument("--template", type=Path, default=defaults.template_path)
    parser.add_argument("--log-level", default="INFO", help="the handlers' POWERTOOLS_LOG_LEVEL")
    args = parser.parse_args()
    configure_logging()
    demo = Demo(
        StackOptions(
            api_port=args.api_port,
            sqs_port=args.sqs_port,
            proxy_port=args.proxy_port,
            writer_port=args.writer_port,
            replica_port=args.replica_port,
            template_path=args.template,
            log_level=args.log_level,
        )
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        demo.start()
    except Exception as error:
        raise SystemExit(f"local stack: {error}") from None
    stack = demo.stack
    api = stack.api.url
    print(
        f"\nlocal stack is up (Ctrl-C stops it and removes {stack.workdir})\n"
        f"  console    {demo.console_url}   (open it in a browser)\n"
        f"  API        {api}\n"
        f"  SQS        {stack.queues.endpoint}  queue {stack.queues.queue_url}\n"
        f"  database   mysql -h127.0.0.1 -P{stack.proxy.port} -u{APP_USER} -p{stack.app_password} {DATABASE}"
        f"   (root, no password, on {stack.writer.port} and {stack.replica.port})\n"
        f"  try        curl -s -XPOST {api}/customers -H 'Content-Type: application/json' "
        f'-d \'{{"customer_id": "c-1", "name": "Ada", "email": "ada@example.com"}}\'\n'
        f"             curl -s {api}/customers/c-1\n",
        flush=True,
    )
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        log.info("stopping")
        demo.stop()


if __name__ == "__main__":
    main()
