"""The whole pipeline on 127.0.0.1: API shim -> SQS (emulator) -> poller -> consumer -> HAProxy -> MariaDB.

The one Stack class serves the demo (local.demo adds the console to it), the drill, the benchmarks and
the end-to-end tests. It knows nothing of what stages failures on it (local.faults) or watches them.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pymysql

from ingest.errors import API_GATEWAY_TIMEOUT_S
from ingest.schema import apply_schema, ensure_function_user
from local.api_gateway import ApiGateway, Route
from local.event_source_mapping import EventSourceMapping
from local.lambda_runtime import FunctionPool, Handler
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
from local.template import LOCAL_REGION, TEMPLATE_PATH, Template, shared_values

log = logging.getLogger("local.stack")

DATABASE = shared_values().database_name
APP_USER = "ingest_app"
# The names the supervisor logs and the drill pauses (the MariaDB instances go by their own names).
PROXY_SERVICE = "HAProxy"
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
        self._event_source_mapping: EventSourceMapping | None = None
        self._api: ApiGateway | None = None
        self.api_functions: list[FunctionPool] = []
        self.supervisor = self._supervisor()

    @property
    def queues(self) -> Queues:
        return _started(self._queues, "the queues")

    @property
    def event_source_mapping(self) -> EventSourceMapping:
        """The event source mapping that feeds the consumer function."""
        return _started(self._event_source_mapping, "the event source mapping")

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

    def _stop_api(self) -> None:
        if self._api is not None:
            self._api.stop()
            self._api = None

    def _stop_api_functions(self) -> None:
        for pool in self.api_functions:
            pool.stop()

    def stop_consumers(self) -> None:
        if self._event_source_mapping is not None:
            self._event_source_mapping.stop()
            self._event_source_mapping = None

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
            ensure_function_user(
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
        self._event_source_mapping = EventSourceMapping(
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
        self._event_source_mapping.start()
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
        self._api = ApiGateway(self.options.api_port, routes)
        self._api.start()
        log.info(
            "API on %s: POST /customers, GET /customers/{customer_id}, GET /records/{request_id}",
            self.api.url,
        )
        log.info("function logs (Powertools JSON, as CloudWatch gets them): %s/*.log", self.workdir)

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

    def add_routes(self, routes: list[Route]) -> None:
        """Serve more resources on the running API (the demo's console)."""
        self.api.routes.extend(routes)

    def replace_route(self, method: str, resource: str, function_name: str, handler: Handler) -> None:
        """Send a route to another handler (the drill's direct-write baselines)."""
        self.api.routes[:] = [
            Route(method, resource, function_name, handler)
            if (r.method, r.resource) == (method, resource)
            else r
            for r in self.api.routes
        ]

    def database_writable(self) -> bool:
        """Whether the consumer's path works: HAProxy reached with the consumer's credentials, the
        database behind it writable."""
        try:
            connection = pymysql.connect(
                host=self.proxy.host,
                port=self.proxy.port,
                user=APP_USER,
                password=self.app_password,
                database=DATABASE,
                connect_timeout=1,
                read_timeout=1,
            )
        except pymysql.MySQLError:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@global.read_only")
                row = cursor.fetchone()
                return row is not None and row[0] == 0
        except pymysql.MySQLError:
            return False
        finally:
            connection.close()

    # ---- the failures local.faults stages ---------------------------------------------------------

    # Each pauses the supervision of what it stops, so the outage lasts as long as the fault wants.

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
