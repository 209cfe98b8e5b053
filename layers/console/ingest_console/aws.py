"""The demo console's backend on a deployed stack: RDS and SQS through their APIs, the ledger through the
read-only database user (ingest_console.contract is the contract it fulfils).

- Roles, zones and states: DescribeDBClusters and DescribeDBInstances (ingest_console.aurora).
- Faults: FailoverDBCluster and RebootDBInstance of the writer, nothing else. The function's container
  keeps the fault it started or saw (its started_at fixed) until the cluster has been seen not available
  and available again; RDS may still report "available" right after the call, so a fault just started
  counts as running for FAULT_SETTLE_TIMEOUT unless the cluster has gone through it by then. A fault is
  refused (409) while one runs and while the cluster or one of its instances is not "available", which
  covers a fault started from another browser or container, by the operator CLI or by RDS.
- Timeline: RDS's own events of the cluster and its instances (DescribeEvents), asked from a minute
  before `since` (RDS publishes events late) and told apart by source, time and message.
- Queues: GetQueueAttributes of the queue and the dead-letter queue. The age of the oldest message is
  a CloudWatch metric only (SQS has no such attribute), so it stays unknown here.
- A run's rows per instance: counted through each instance endpoint, so the reader's count shows
  replication catching up; the ledger's answers (which ids are committed, the run's totals) through the
  cluster endpoint, i.e. the writer. Both as the read-only user with an IAM token over verified TLS.
- Dead-lettered ids: a peek of the dead-letter queue (ingest_console.dead_letters), only when it holds any.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ingest.config import AMAZON_RDS_ROOTS, DatabaseSettings
from ingest.connection import Database, DatabaseUnavailable, error_label, is_transient
from ingest.errors import InvalidInput, Unavailable
from ingest_console import aurora, dead_letters, ledger
from ingest_console.config import ConsoleSettings
from ingest_console.contract import (
    CONSOLE_KEY_PATH,
    DEAD_LETTERS_PEEKED,
    Conflict,
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

if TYPE_CHECKING:  # boto3-stubs' types: development only, the layer does not ship them
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_sqs import SQSClient

FAULTS = (
    failover_fault(
        "Aurora fails over (FailoverDBCluster) to the reader in the other Availability Zone. Writes pause "
        "for about half a minute; the queue keeps them."
    ),
    restart_fault(
        "RebootDBInstance of the writer. Writes pause until the writer is back; the queue keeps them."
    ),
)
# The timeline's reach when the page asks without `since` (its first status of a run).
EVENTS_LOOKBACK = timedelta(hours=1)
# RDS publishes an event some seconds after its time: each status asks again from this long before `since`.
EVENTS_OVERLAP = timedelta(minutes=1)
# How long a fault just started counts as running while the cluster still looks untouched.
# The console page waits as long before it closes a fault it never saw running (FAULT_SETTLE_MS in
# functions/console/static/fault.js): change both together.
FAULT_SETTLE_TIMEOUT = timedelta(minutes=5)
# RDS's refusals that mean "the cluster is busy with something else".
BUSY_CLUSTER_ERRORS = frozenset({"InvalidDBClusterStateFault", "InvalidDBInstanceState"})

logger = Logger(child=True)


class AwsBackend:
    """ConsoleBackend of a deployed stack; `rds` and `sqs` are boto3 clients."""

    name: Literal["local", "aws"] = "aws"  # the protocol's type: its attribute is writable

    def __init__(self, settings: ConsoleSettings, rds: RDSClient, sqs: SQSClient) -> None:
        self.settings = settings
        self.rds = rds
        self.sqs = sqs
        # One connection per endpoint, kept by the container like the other functions' (ingest.connection).
        self._databases: dict[tuple[str, int], Database] = {}
        # The fault this container started or saw, and whether the cluster has been seen not available
        # since it began.
        self._fault: FaultRun | None = None
        self._fault_seen_busy = False

    def faults(self) -> list[Fault]:
        return list(FAULTS)

    def status(self, run_id: str | None, since: datetime | None) -> Status:
        prefix = run_prefix(run_id) if run_id is not None else None
        cluster = aurora.describe_cluster(self.rds, self.settings.cluster_id)
        counts = self._rows_per_instance(cluster.members, prefix) if prefix is not None else {}
        events = self._rds_events(cluster, since or datetime.now(UTC) - EVENTS_LOOKBACK)
        writer = next((member for member in cluster.members if member.role == "writer"), None)
        return Status(
            backend="aws",
            at=datetime.now(UTC),
            database_writable=cluster.status == "available"
            and writer is not None
            and writer.status == "available",
            instances=[
                Instance(
                    name=member.instance_id,
                    role="writer" if member.role == "writer" else "reader",
                    availability_zone=member.availability_zone,
                    status=member.status,
                    committed_rows=counts.get(member.instance_id),
                )
                for member in cluster.members
            ],
            queue=self._queue_state(),
            fault=self._track_fault(cluster, events),
            events=events,
        )

    def start_fault(self, name: str, seconds: float | None) -> FaultRun:
        # Both faults take as long as RDS takes: console_api refuses a length for them.
        if name not in {fault.name for fault in FAULTS}:
            offered = ", ".join(fault.name for fault in FAULTS)
            raise InvalidInput("unknown_fault", f"no fault {name!r} on AWS; the faults are {offered}", "name")
        cluster = aurora.describe_cluster(self.rds, self.settings.cluster_id)
        running = self._track_fault(cluster, [])
        if running is not None and running.ended_at is None:
            raise FaultInProgress(
                "fault_in_progress",
                f"{running.name} is running since {running.started_at.isoformat()} ({_states(cluster)}): "
                "one fault at a time, wait until every instance is available",
            )
        started_at = datetime.now(UTC)
        try:
            if name == "failover":
                aurora.fail_over(self.rds, cluster.cluster_id)
            else:
                aurora.reboot_writer(self.rds, cluster.cluster_id)
        except aurora.ClusterStateError as error:
            raise Conflict("cluster_not_ready", str(error)) from None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in BUSY_CLUSTER_ERRORS:
                raise FaultInProgress(
                    "fault_in_progress", f"RDS refused the {name}: the cluster is busy, try again later"
                ) from None
            raise
        logger.info("fault started", fault=name, cluster=cluster.cluster_id)
        self._fault = FaultRun(name=name, seconds=None, started_at=started_at)
        self._fault_seen_busy = False
        return self._fault

    def reconcile(self, request: ReconcileRequest) -> Reconciliation:
        database = self._database(self.settings.database)
        try:
            connection = database.connection()
            committed = ledger.committed_request_ids(connection, request.request_ids)
            summary = ledger.run_summary(connection, run_prefix(request.run_id), CONSOLE_KEY_PATH)
        except DatabaseUnavailable:
            raise Unavailable("database_unavailable", "the database cannot be read right now") from None
        except Exception as error:
            if not is_transient(error):
                raise
            database.discard()
            raise Unavailable("database_unavailable", "the database cannot be read right now") from None
        return Reconciliation(
            committed=committed, dead_lettered=self._dead_lettered(set(request.request_ids)), run=summary
        )

    # ---- the parts ----------------------------------------------------------------------------------

    def _database(self, settings: DatabaseSettings) -> Database:
        key = (settings.host, settings.port)
        if key not in self._databases:
            # Aurora's own endpoints present RDS's certificates, not RDS Proxy's ACM ones.
            self._databases[key] = Database(settings.model_copy(update={"ca_bundle": AMAZON_RDS_ROOTS}))
        return self._databases[key]

    def _rows_per_instance(self, members: list[aurora.Member], prefix: str) -> dict[str, int | None]:
        """The run's rows as each instance sees them, counted on all at once (a slow or dead one costs
        its timeouts once, not once per instance); None where an instance did not answer."""
        endpoints = {
            member.instance_id: self.settings.database.model_copy(
                update={"host": member.endpoint, "port": member.port or self.settings.database.port}
            )
            for member in members
            if member.endpoint
        }
        if not endpoints:
            return {}
        with ThreadPoolExecutor(max_workers=len(endpoints)) as pool:
            counts = pool.map(lambda item: self._count_on(item[0], item[1], prefix), endpoints.items())
            return dict(zip(endpoints, counts, strict=True))

    def _count_on(self, instance_id: str, settings: DatabaseSettings, prefix: str) -> int | None:
        database = self._database(settings)
        try:
            return ledger.count_records(database.connection(), prefix)
        except Exception as error:
            # Down, restarting or failing over: the page shows "no answer" for this instance.
            database.discard()
            logger.info("instance did not answer", instance=instance_id, error=error_label(error))
            return None

    def _track_fault(self, cluster: aurora.Cluster, events: list[ConsoleEvent]) -> FaultRun | None:
        """The fault running now, or the last one (with its ended_at): the one started here ends once
        the cluster has been seen not available and then available again (or has looked untouched for
        FAULT_SETTLE_TIMEOUT); a disruption started elsewhere is tracked from when it is first seen."""
        now = datetime.now(UTC)
        fault = self._fault
        if fault is not None and fault.ended_at is None:
            if not cluster.available:
                self._fault_seen_busy = True
            elif self._fault_seen_busy or now - fault.started_at >= FAULT_SETTLE_TIMEOUT:
                self._fault = fault.model_copy(update={"ended_at": now})
            return self._fault
        if not cluster.available:
            self._fault = FaultRun(
                name=_disruption_name(cluster), seconds=None, started_at=events[0].at if events else now
            )
            self._fault_seen_busy = True
        return self._fault

    def _rds_events(self, cluster: aurora.Cluster, since: datetime) -> list[ConsoleEvent]:
        events = aurora.recent_events(self.rds, cluster.cluster_id, since - EVENTS_OVERLAP, cluster.members)
        timeline = {
            (event["source"], event["time"], event["message"]): ConsoleEvent(
                at=datetime.fromisoformat(event["time"]),
                source="rds",
                message=f"{event['source']}: {event['message']}",
            )
            for event in events
        }
        # The page tells apart the events it already has by the same time, source and message.
        return list(timeline.values())

    def _queue_state(self) -> QueueState:
        try:
            visible, in_flight = queue_depth(self.sqs, self.settings.queue_url)
            dead_letter = dead_letters.message_count(self.sqs, self.settings.dead_letter_queue_url)
        except (BotoCoreError, ClientError) as error:
            logger.warning("queue attributes unavailable", error=type(error).__name__)
            return QueueState(visible=None, in_flight=None, dead_letter=None, oldest_age_s=None)
        return QueueState(
            visible=visible,
            in_flight=in_flight,
            dead_letter=dead_letter,
            oldest_age_s=None,
        )

    def _dead_lettered(self, asked: set[str]) -> list[str]:
        return dead_letters.parked_among(
            self.sqs, self.settings.dead_letter_queue_url, asked, DEAD_LETTERS_PEEKED
        )


def _states(cluster: aurora.Cluster) -> str:
    members = ", ".join(f"{member.instance_id} {member.status}" for member in cluster.members)
    return f"cluster {cluster.status}; {members}" if members else f"cluster {cluster.status}"


def _disruption_name(cluster: aurora.Cluster) -> str:
    """What a cluster that is not available is going through, named from its state: a failover (the
    cluster is failing over), a restart (an instance reboots), else its states."""
    if cluster.status == "failing-over":
        return "failover"
    if any(member.status == "rebooting" for member in cluster.members):
        return "restart"
    return _states(cluster)
