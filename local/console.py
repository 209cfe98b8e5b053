"""The demo console's local backend: the Stack's faults, its two MariaDB instances and the SQS emulator.

The demo (local.demo) serves the console (ingest_console.api) on the stack's API shim under /console/;
this module answers for the stack: it starts the faults of local.faults (one at a time, in a thread of
its own), tells them on the timeline as RDS would, and counts and reconciles a console run's rows.

RDS's events are emulated with RDS's own wording (Amazon RDS User Guide, "Amazon RDS event categories
and event messages"): "Started cross AZ failover to DB instance", "Completed failover to DB instance",
"DB instance shutdown", "DB instance restarted".

The database side reads with the servers' root user: the local stack has no read-only user (on AWS the
console reads through one).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import pymysql

from ingest.connection import is_transient
from ingest.errors import InvalidInput, Unavailable
from ingest_console import dead_letters, ledger
from ingest_console.contract import (
    CONSOLE_KEY_PATH,
    DEAD_LETTERS_PEEKED,
    ConsoleBackend,
    ConsoleEvent,
    Fault,
    FaultInProgress,
    FaultRun,
    Instance,
    QueueState,
    ReconcileRequest,
    Reconciliation,
    Status,
    failover_fault,
    restart_fault,
    run_prefix,
)
from ingest_console.queues import queue_depth
from local import faults as fault_steps
from local.servers import MariaDB, sqs_client
from local.stack import DATABASE, Stack

log = logging.getLogger("local.console")

# A made-up Availability Zone per instance, so the page shows where each one is as it does on AWS.
AVAILABILITY_ZONES = {"db-a": "local-a", "db-b": "local-b"}
QUEUE_OUTAGE = Fault(
    name="queue-outage",
    label="Queue outage",
    description="The SQS emulator is killed for the chosen seconds, then restarts on its data.",
    seconds=(2, 10, 60),
)
EventSource = Literal["console", "database", "queue", "rds"]


class LocalConsole(ConsoleBackend):
    name: Literal["local", "aws"] = "local"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._sqs = sqs_client(stack.queues.endpoint, timeout=1)
        self._lock = threading.Lock()
        self._events: list[ConsoleEvent] = []
        self._fault: FaultRun | None = None
        self._fault_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_dead_lettered: set[str] = set()
        self._steps: dict[str, Callable[[float], None]] = {
            "failover": self._failover,
            "restart": self._restart,
            "upgrade": self._upgrade,
            "consumer-crash": self._consumer_crash,
            "queue-outage": self._queue_outage,
            "poison": self._poison,
        }

    # ---- ConsoleBackend -----------------------------------------------------------------------------

    def faults(self) -> list[Fault]:
        consumer = self.stack.consumer_settings()
        receives = int(consumer["POISON_RECEIVE_COUNT"])
        # A refused record is hidden for the retry base between receives (ingest.consumer).
        to_dead_letter_s = (receives - 1) * int(consumer["RETRY_BASE_SECONDS"])
        # An external SQS endpoint cannot be killed from here.
        queue_outage = [QUEUE_OUTAGE] if self.stack.sqs is not None else []
        return [
            failover_fault(
                "the writer is killed (SIGKILL), the reader promoted after the chosen seconds, and the "
                "old writer comes back as its reader.",
                seconds=(1, 5, 30),
            ),
            restart_fault("down for the chosen seconds, then back.", seconds=(1, 5, 30)),
            Fault(
                name="upgrade",
                label="Upgrade",
                description="Both instances down for the chosen seconds, as during an engine upgrade.",
                seconds=(2, 10, 60),
            ),
            Fault(
                name="consumer-crash",
                label="Consumer crash",
                description="A consumer is killed between its commit and its delete every "
                f"{fault_steps.CRASH_EVERY_S:.0f} s, for the chosen seconds.",
                seconds=(2, 10, 60),
            ),
            *queue_outage,
            Fault(
                name="poison",
                label="Poison records",
                description="One record per second that the database refuses, for the chosen seconds; "
                f"the consumer sets each aside in the dead-letter queue on receive {receives} "
                f"(about {to_dead_letter_s:.0f} s after it was sent).",
                seconds=(1, 5, 30),
            ),
        ]

    def status(self, run_id: str | None, since: datetime | None) -> Status:
        with self._lock:
            events = [event for event in self._events if since is None or event.at > since]
            fault = self._fault
        return Status(
            backend="local",
            at=datetime.now(UTC),
            database_writable=self.stack.database_writable(),
            instances=[self._instance(server, run_id) for server in self._instances()],
            queue=self._queue_state(),
            fault=fault,
            events=events,
        )

    def start_fault(self, name: str, seconds: float | None) -> FaultRun:
        step = self._steps.get(name)
        if step is None or name not in {fault.name for fault in self.faults()}:
            raise InvalidInput("unknown_fault", f"name: no fault {name!r} on this stack", field="name")
        with self._lock:
            if self._stopping.is_set():
                raise FaultInProgress("stack_stopping", "the local stack is stopping")
            if self._fault is not None and self._fault.ended_at is None:
                raise FaultInProgress(
                    "fault_in_progress", f"{self._fault.name} is running; start another once it has ended"
                )
            run = FaultRun(name=name, seconds=seconds, started_at=datetime.now(UTC))
            self._fault = run
            self._fault_thread = threading.Thread(
                target=self._run_fault, args=(run, step), name=f"console-{name}", daemon=True
            )
            self._fault_thread.start()
        return run

    def reconcile(self, request: ReconcileRequest) -> Reconciliation:
        try:
            with self._ledger() as connection:
                committed = ledger.committed_request_ids(connection, request.request_ids)
                summary = ledger.run_summary(connection, run_prefix(request.run_id), CONSOLE_KEY_PATH)
        except Exception as error:
            if not is_transient(error):
                raise
            # The writer is down or changing role (a fault of this console): the page asks again.
            raise Unavailable("database_unavailable", "the database cannot be read right now") from None
        return Reconciliation(
            committed=committed, dead_lettered=self._dead_lettered(set(request.request_ids)), run=summary
        )

    # ---- the stack's side ---------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new faults and wait for the running one to end, before the stack stops its servers
        (a fault ending later would start a server again)."""
        self._stopping.set()
        with self._lock:
            thread = self._fault_thread
        if thread is not None and thread.is_alive():
            log.info("waiting for the console's running fault to end")
            thread.join()

    def _run_fault(self, run: FaultRun, step: Callable[[float], None]) -> None:
        length = f" for {run.seconds:g} s" if run.seconds is not None else ""
        self._event("console", f"Fault started: {run.name}{length}")
        error: str | None = None
        try:
            step(run.seconds or 0)
        except Exception as failure:
            log.exception("console fault %s failed", run.name)
            error = f"{type(failure).__name__}: {failure}"
        with self._lock:
            self._fault = run.model_copy(update={"ended_at": datetime.now(UTC), "error": error})
        self._event("console", f"Fault {'failed: ' + error if error else 'ended'}: {run.name}")

    def _failover(self, seconds: float) -> None:
        old, new = self.stack.writer.name, self.stack.replica.name
        self._event("rds", f"Started cross AZ failover to DB instance: {new}")
        self._event("database", f"{old} (writer) killed")
        fault_steps.failover(self.stack, seconds)
        self._event("rds", f"Completed failover to DB instance: {new}")
        self._event("database", f"{new} promoted to writer; {old} restarted as its reader")

    def _restart(self, seconds: float) -> None:
        writer = self.stack.writer.name
        self._event("rds", f"DB instance shutdown: {writer}")
        fault_steps.restart(self.stack, seconds)
        self._event("rds", f"DB instance restarted: {writer}")

    def _upgrade(self, seconds: float) -> None:
        names = [server.name for server in self._instances()]
        for name in names:
            self._event("rds", f"DB instance shutdown: {name}")
        fault_steps.upgrade(self.stack, seconds)
        for name in names:
            self._event("rds", f"DB instance restarted: {name}")

    def _consumer_crash(self, seconds: float) -> None:
        killed = fault_steps.consumer_crash(self.stack, seconds)
        self._event("console", f"{killed} consumers killed after their commit")

    def _queue_outage(self, seconds: float) -> None:
        self._event("queue", "SQS emulator killed")
        fault_steps.queue_outage(self.stack, seconds)
        self._event("queue", "SQS emulator back, with its messages")

    def _poison(self, seconds: float) -> None:
        fault_steps.poison(self.stack, self._send_poison, seconds, stopping=self._stopping)

    def _send_poison(self, customer_id: str) -> None:
        status = self._post_customer(customer_id)
        self._event("console", f"poison record {customer_id} sent: {status}")

    def _post_customer(self, customer_id: str) -> str:
        """One POST /customers as a separate client of the API; what it was told, as text."""
        connection = http.client.HTTPConnection(self.stack.api.host, self.stack.api.port, timeout=30)
        body = {"customer_id": customer_id, "name": "Poison", "email": f"{customer_id}@example.com"}
        try:
            connection.request(
                "POST", "/customers", body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            return str(connection.getresponse().status)
        except (OSError, http.client.HTTPException) as error:
            return f"no answer ({error})"
        finally:
            connection.close()

    def _event(self, source: EventSource, message: str) -> None:
        log.info("console: %s", message)
        with self._lock:
            self._events.append(ConsoleEvent(at=datetime.now(UTC), source=source, message=message))

    def _instances(self) -> list[MariaDB]:
        return sorted((self.stack.writer, self.stack.replica), key=lambda server: server.name)

    def _instance(self, server: MariaDB, run_id: str | None) -> Instance:
        running = server.is_running()
        return Instance(
            name=server.name,
            role="writer" if server is self.stack.writer else "reader",
            availability_zone=AVAILABILITY_ZONES.get(server.name),
            status="available" if running else "down",
            committed_rows=self._count_rows(server, run_id) if running and run_id else None,
        )

    def _count_rows(self, server: MariaDB, run_id: str) -> int | None:
        """The run's rows as this instance has them (the reader's lag shows as a lower count)."""
        try:
            with server.connect(database=DATABASE, connect_timeout=1, read_timeout=2) as connection:
                return ledger.count_records(connection, run_prefix(run_id))
        except pymysql.MySQLError:
            return None

    def _queue_state(self) -> QueueState:
        queues = self.stack.queues
        try:
            visible, in_flight = queue_depth(self._sqs, queues.queue_url)
            dead_visible, dead_in_flight = queue_depth(self._sqs, queues.dead_letter_url)
        except Exception:  # the queue is down: the page shows it as not answering
            return QueueState(visible=None, in_flight=None, dead_letter=None, oldest_age_s=None)
        # ApproximateAgeOfOldestMessage is a CloudWatch metric, not a queue attribute; peeking the FIFO
        # queue to read SentTimestamp would hold back the consumers' message groups. The page shows
        # the age of its oldest acknowledged request not yet committed instead.
        return QueueState(
            visible=visible, in_flight=in_flight, dead_letter=dead_visible + dead_in_flight, oldest_age_s=None
        )

    def _ledger(self) -> pymysql.Connection:
        """A connection to the writer, whose ledger the reconciliation reads."""
        return self.stack.writer.connect(database=DATABASE, connect_timeout=2, read_timeout=10)

    def _dead_lettered(self, asked: set[str]) -> list[str]:
        url = self.stack.queues.dead_letter_url
        try:
            parked = dead_letters.parked_among(self._sqs, url, asked, DEAD_LETTERS_PEEKED)
        except Exception as error:  # the queue is down: the last peek stands
            log.debug("dead-letter queue not answering: %s", error)
            return sorted(asked & self._last_dead_lettered)
        self._last_dead_lettered = set(parked)
        return parked
