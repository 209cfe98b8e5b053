"""The whole pipeline on 127.0.0.1: API shim -> SQS (emulator) -> poller -> consumer -> HAProxy -> MariaDB.

    python -m local.stack            # make demo: start everything, print the URLs, Ctrl-C stops it all

The same Stack class serves the drill and the end-to-end tests.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.api import API_GATEWAY_TIMEOUT_S
from ingest.schema import apply_schema, ensure_app_user
from local.api_gateway import ApiGateway, Route
from local.event_source_mapping import EventSourceMapping
from local.lambda_runtime import FunctionPool, Handler, LambdaContext
from local.servers import MariaDB, SqsEmulator, database_env, ensure_port_free
from local.servers.haproxy import INSTALL_HINT as HAPROXY_HINT
from local.servers.haproxy import HAProxy
from local.servers.mariadb import INSTALL_HINT as MARIADB_HINT
from local.servers.process import find_binary
from local.servers.replication import (
    create_service_users,
    demote,
    promote,
    resume_replicating,
    start_replicating,
)
from local.servers.sqs_emulator import DUMMY_CREDENTIALS
from local.stack_queues import Queues, create_queues, external_endpoint
from local.supervisor import Supervisor
from local.template import LOCAL_REGION, REPO_ROOT, TEMPLATE_PATH, Template, shared_values

if TYPE_CHECKING:
    from local.console import LocalConsole

log = logging.getLogger("local.stack")

DATABASE = shared_values().database_name
APP_USER = "ingest_app"
# The names the supervisor logs and the drill pauses (the MariaDB instances go by their own names).
PROXY_SERVICE = "HAProxy"
# The demo console's page and scripts: the console function's files, served by the API shim too.
CONSOLE_STATIC_DIR = REPO_ROOT / "functions" / "console" / "static"
QUEUE_SERVICE = "the SQS emulator"


@dataclass
class StackOptions:
    api_port: int = 3000
    writer_port: int = 13307
    replica_port: int = 13308
    proxy_port: int = 13306
    sqs_port: int = 9324
    workdir: Path | None = None  # a fresh temporary directory when None
    template_path: Path = TEMPLATE_PATH
    poison_receive_count: int | None = None  # the template's when None
    visibility_timeout: int | None = None  # the template's when None
    consumer_concurrency: int | None = None  # the template's ConsumerMaxConcurrency default when None
    log_level: str = "INFO"  # the handlers' POWERTOOLS_LOG_LEVEL
    consumer_environment: dict[str, str] = field(default_factory=dict)
    # Restart HAProxy, the SQS emulator or a MariaDB instance that dies, as the managed services heal.
    supervise: bool = True


def _started[T](part: T | None, name: str) -> T:
    if part is None:
        raise RuntimeError(f"{name} of the local stack not started yet")
    return part


class Stack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.template = Template(self.options.template_path)
        self._own_workdir = self.options.workdir is None
        self.workdir = Path(self.options.workdir or tempfile.mkdtemp(prefix="ingest-local-"))
        self.app_password = secrets.token_urlsafe(16)
        # The roles swap in the failover drill; the instance names (db-a, db-b) stay.
        self.writer = MariaDB(self.options.writer_port, self.workdir / "db-a", 1, "db-a")
        self.replica = MariaDB(self.options.replica_port, self.workdir / "db-b", 2, "db-b")
        self.proxy = HAProxy(self.options.proxy_port, self.workdir / "haproxy")
        self.external_sqs = external_endpoint()
        self.sqs = None if self.external_sqs else SqsEmulator(self.workdir / "sqs", self.options.sqs_port)
        self._queues: Queues | None = None
        self._consumers: EventSourceMapping | None = None
        self._api: ApiGateway | None = None
        self.console: LocalConsole | None = None
        self.api_functions: list[FunctionPool] = []
        self.supervisor = self._supervisor()

    @property
    def queues(self) -> Queues:
        return _started(self._queues, "the queues")

    @property
    def consumers(self) -> EventSourceMapping:
        """The event source mapping that feeds the consumer function."""
        return _started(self._consumers, "the consumers")

    @property
    def api(self) -> ApiGateway:
        return _started(self._api, "the API")

    # ---- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        self._preflight()
        try:
            self._start_databases()
            self._start_queue()
            self._start_consumers()
            self._start_api()
            if self.options.supervise:
                self.supervisor.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process the stack started and remove its data directories."""
        for name, step in (
            ("console", self._stop_console),  # its running fault ends before the servers stop
            ("supervisor", self.supervisor.stop),  # first, so it restarts nothing that stops now
            ("API", self._stop_api),
            ("API functions", self._stop_api_functions),
            ("consumers", self.stop_consumers),
            ("SQS emulator", self._stop_sqs_emulator),
            ("HAProxy", self.proxy.stop),
            ("databases", self.stop_databases),
        ):
            try:
                step()
            except Exception:
                log.exception("stopping the %s failed", name)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            log.info("removed %s", self.workdir)

    def _stop_console(self) -> None:
        if self.console is not None:
            self.console.close()

    def _stop_api(self) -> None:
        if self._api is not None:
            self._api.stop()
            self._api = None

    def _stop_api_functions(self) -> None:
        for pool in self.api_functions:
            pool.stop()

    def stop_consumers(self) -> None:
        if self._consumers is not None:
            self._consumers.stop()
            self._consumers = None

    def _stop_sqs_emulator(self) -> None:
        if self.sqs is not None:
            self.sqs.stop()

    def _preflight(self) -> None:
        """Refuse before starting anything: a missing binary or a taken port, each with its fix."""
        for binary in ("mariadbd", "mariadb-install-db"):
            find_binary(binary, MARIADB_HINT)
        find_binary("haproxy", HAPROXY_HINT)
        options = self.options
        wanted = {
            options.writer_port: "the MariaDB writer",
            options.replica_port: "the MariaDB replica",
            options.proxy_port: "HAProxy (the database endpoint)",
            options.api_port: "the API (HTTP shim)",
        }
        if self.sqs is not None:
            wanted[options.sqs_port] = "the SQS emulator"
        if len(wanted) < (5 if self.sqs else 4):
            raise ValueError("the stack's ports must all differ")
        for port, purpose in wanted.items():
            ensure_port_free(port, purpose)

    def _start_databases(self) -> None:
        writer, replica = self.writer, self.replica
        log.info(
            "starting MariaDB writer on %d and replica on %d (data in %s)",
            writer.port,
            replica.port,
            self.workdir,
        )
        writer.start()
        replica.start(as_replica=True)
        for server in (writer, replica):
            create_service_users(server)
        start_replicating(replica, writer)
        self._apply_schema()
        log.info("replica %s follows writer %s with GTID (semi-sync)", replica.name, writer.name)
        self.proxy.start((writer.name, writer.port), (replica.name, replica.port))
        log.info(
            "HAProxy on %d: %s first, %s as backup (the RDS Proxy endpoint)",
            self.proxy.port,
            writer.name,
            replica.name,
        )

    def _apply_schema(self) -> None:
        # The same code the schema migrator custom resource runs on deploy.
        with self.writer.connect() as connection:
            apply_schema(connection, DATABASE)
            # The functions' user with the product's grants; a password instead of IAM, which needs AWS.
            # (token_urlsafe yields only letters, digits, '-' and '_': safe inside the quotes.)
            ensure_app_user(
                connection, APP_USER, database=DATABASE, authentication=f"IDENTIFIED BY '{self.app_password}'"
            )
        log.info("schema applied to %s by ingest.schema.apply_schema; user %s created", DATABASE, APP_USER)

    def _start_queue(self) -> None:
        if self.sqs is not None:
            self.sqs.start()
            endpoint = self.sqs.endpoint
            log.info("SQS emulator (python -m local.sqs) on %s, durable in %s", endpoint, self.sqs.datadir)
        elif self.external_sqs is not None:
            endpoint = self.external_sqs
            log.info("using the SQS endpoint %s (INGEST_SQS_ENDPOINT)", endpoint)
        self._queues = create_queues(endpoint, self.template, self.options.visibility_timeout)
        log.info(
            "queues from %s: %s -> dead-letter queue after %d receives",
            self.template.path.name,
            self.queues.queue_url,
            self.queues.max_receive_count,
        )

    def function_environment(self) -> dict[str, str]:
        """The environment variables the handlers read, pointing at the local servers."""
        return {
            **shared_values().powertools_environment,
            "POWERTOOLS_LOG_LEVEL": self.options.log_level,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_ENDPOINT_URL_SQS": self.queues.endpoint,
            "QUEUE_URL": self.queues.queue_url,
            "DEAD_LETTER_QUEUE_URL": self.queues.dead_letter_url,
            **database_env(self.proxy.host, self.proxy.port, DATABASE, APP_USER, self.app_password),
            "DB_CONNECT_TIMEOUT": "2",
        }

    def consumer_settings(self) -> dict[str, str]:
        """The consumer's retry backoff and poison limit as the template deploys them (promises 5 and 6)."""
        shared = self.template.shared_values()
        poison_receives = self.options.poison_receive_count or shared.poison_receive_count
        return self.template.function_variables(
            "ConsumerFunction", "RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS"
        ) | {"POISON_RECEIVE_COUNT": str(poison_receives)}

    def _start_consumers(self) -> None:
        concurrency = self.options.consumer_concurrency or self.template.consumer_max_concurrency()
        self._consumers = EventSourceMapping(
            endpoint=self.queues.endpoint,
            queue_url=self.queues.queue_url,
            queue_arn=self.queues.queue_arn,
            worker_environment=self.function_environment()
            | self.consumer_settings()
            | self.options.consumer_environment,
            concurrency=concurrency,
            function_timeout_s=self.template.function_timeout("ConsumerFunction"),
            logdir=self.workdir,
        )
        self._consumers.start()
        log.info(
            "event source mapping: batches of up to 10, %d consumer processes (logs in %s)",
            concurrency,
            self.workdir,
        )

    def _start_api(self) -> None:
        environment = self.function_environment()
        # Like Lambda: separate environments per function, each serving one request at a time.
        self.api_functions = [
            FunctionPool(
                name,
                environment,
                logical_id,
                min(self.template.function_timeout(logical_id), API_GATEWAY_TIMEOUT_S),
                self.workdir,
            )
            for name, logical_id in (("producer", "ProducerFunction"), ("reader", "ReaderFunction"))
        ]
        for pool in self.api_functions:
            pool.start()
        producer, reader = self.api_functions
        routes = [
            Route("POST", "/customers", producer.function_name, producer),
            Route("GET", "/customers/{customer_id}", reader.function_name, reader),
            Route("GET", "/records/{request_id}", reader.function_name, reader),
        ]
        self._api = ApiGateway(self.options.api_port, [*routes, *self._console_routes()])
        self._api.start()
        log.info(
            "API on %s: POST /customers, GET /customers/{customer_id}, GET /records/{request_id}; "
            "the demo console at %s",
            self.api.url,
            self.console_url,
        )
        log.info("function logs (Powertools JSON, as CloudWatch gets them): %s/*.log", self.workdir)

    @property
    def console_url(self) -> str:
        return f"{self.api.url}/console/"

    def _console_routes(self) -> list[Route]:
        """The demo console on the API shim, handled in this process: its faults act on this Stack."""
        # Imported here: the console builds on the Stack (and the drill's scenarios, which do too).
        from ingest_console.api import console_app
        from local.console import LocalConsole

        console = self.console = LocalConsole(self)

        def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            # A resolver per request: it keeps the current event on itself, and the shim serves
            # requests in parallel threads (Lambda gives each environment one request at a time).
            app = console_app(console, CONSOLE_STATIC_DIR)
            # The local context carries the attributes Powertools reads; it is not Powertools' class.
            return app.resolve(event, context)  # type: ignore[arg-type]

        name = "ConsoleFunction"
        return [
            Route(method, path, name, handler)
            for method, path in (
                ("GET", "/console"),  # the resolver sends it to /console/, as on AWS
                ("GET", "/console/"),
                ("GET", "/console/static/{name}"),
                ("GET", "/console/api/config"),
                ("GET", "/console/api/status"),
                ("POST", "/console/api/faults"),
                ("POST", "/console/api/reconcile"),
            )
        ]

    def _supervisor(self) -> Supervisor:
        """What the stack supervises once started: the stand-ins for managed services."""
        supervisor = Supervisor()
        for server in (self.writer, self.replica):
            supervisor.watch(
                self._service_name(server), server.is_running, partial(self._restart_database, server)
            )
        supervisor.watch(PROXY_SERVICE, self.proxy.is_running, self.proxy.restart)
        if self.sqs is not None:
            supervisor.watch(QUEUE_SERVICE, self.sqs.is_running, self.sqs.start)
        return supervisor

    @staticmethod
    def _service_name(server: MariaDB) -> str:
        return f"MariaDB {server.name}"

    def _restart_database(self, server: MariaDB) -> None:
        """Start a crashed instance again in its role, as Aurora restarts a failed instance."""
        if server is self.writer:
            server.start()  # its replica reconnects by itself (MASTER_CONNECT_RETRY = 1)
        else:
            server.start(as_replica=True)
            resume_replicating(server)

    def replace_route(self, method: str, resource: str, function_name: str, handler: Handler) -> None:
        """Send a route to another handler (the drill's direct-write baselines)."""
        self.api.routes[:] = [
            Route(method, resource, function_name, handler)
            if (r.method, r.resource) == (method, resource)
            else r
            for r in self.api.routes
        ]

    # ---- failures the drill stages ---------------------------------------------------------------

    # Each pauses the supervision of what it stops, so the outage lasts as long as the drill wants.

    def stop_databases(self) -> None:
        """Both instances down, as during an engine upgrade."""
        self.supervisor.pause(*self._database_services())
        self.replica.stop()
        self.writer.stop()

    def start_databases(self) -> None:
        self.writer.start()
        self.replica.start(as_replica=True)
        resume_replicating(self.replica)
        self.supervisor.resume(*self._database_services())

    def kill_writer(self) -> None:
        """SIGKILL of the writer; it stays down until `fail_over`."""
        self.supervisor.pause(self._service_name(self.writer))
        self.writer.kill()

    def fail_over(self) -> None:
        """Promote the replica, point HAProxy at it, and bring the old writer back as its replica."""
        old, new = self.writer, self.replica
        with self.supervisor.paused(*self._database_services(), PROXY_SERVICE):
            promote(new)
            self.writer, self.replica = new, old
            self.proxy.route_to((new.name, new.port), (old.name, old.port))
            demote(old, new)

    def stop_writer(self) -> None:
        """A clean shutdown of the writer, as a reboot begins; it stays down until `start_writer`."""
        self.supervisor.pause(self._service_name(self.writer))
        self.writer.stop()

    def start_writer(self) -> None:
        """The writer back in its role; its replica reconnects by itself (MASTER_CONNECT_RETRY = 1)."""
        try:
            self.writer.start()
        finally:  # should the start fail, the supervisor restarts it, as RDS recovers an instance
            self.supervisor.resume(self._service_name(self.writer))

    def kill_queue(self) -> None:
        """SIGKILL of the SQS emulator; it stays down until `restart_queue`."""
        sqs = _started(self.sqs, "the SQS emulator")
        self.supervisor.pause(QUEUE_SERVICE)
        sqs.kill()

    def restart_queue(self) -> None:
        """Start the SQS emulator again on its data."""
        try:
            _started(self.sqs, "the SQS emulator").start()
        finally:  # should the start fail, the supervisor restarts it
            self.supervisor.resume(QUEUE_SERVICE)

    def _database_services(self) -> tuple[str, str]:
        return self._service_name(self.writer), self._service_name(self.replica)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-12s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("botocore").setLevel(logging.WARNING)


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
    stack = Stack(
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
        stack.start()
    except Exception as error:
        raise SystemExit(f"local stack: {error}") from None
    api = stack.api.url
    print(
        f"\nlocal stack is up (Ctrl-C stops it and removes {stack.workdir})\n"
        f"  console    {stack.console_url}   (open it in a browser)\n"
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
        stack.stop()


if __name__ == "__main__":
    main()
