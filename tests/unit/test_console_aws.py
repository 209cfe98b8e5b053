"""The demo console's AWS backend against moto (RDS: an Aurora cluster of two instances, failover; SQS: the
template's two FIFO queues) and botocore's Stubber for what moto does not model (a cluster that is
failing over or rebooting, RDS's refusal of a fault, DescribeEvents since a time)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ingest.config import DatabaseSettings
from ingest.errors import InvalidInput, Unavailable
from ingest_console.aws import EVENTS_OVERLAP, AwsBackend
from ingest_console.contract import Conflict, FaultInProgress, ReconcileRequest
from local.servers import free_port
from tests.moto_stack import CLUSTER, REGION, MotoStack, settings

T0 = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)


@pytest.fixture
def moto_stack() -> Iterator[MotoStack]:
    with mock_aws():
        yield MotoStack()


def roles(backend: AwsBackend) -> dict[str, tuple[str, str | None]]:
    return {
        instance.name: (instance.role, instance.availability_zone)
        for instance in backend.status(None, None).instances
    }


# ---- roles and faults -----------------------------------------------------------------------------------


def test_the_status_shows_which_instance_writes_in_which_zone(moto_stack):
    # GIVEN the cluster with its writer in one zone and its reader in another
    backend = moto_stack.backend()
    # WHEN the page asks for the status (no run yet)
    status = backend.status(None, None)
    # THEN it names the roles, zones and states, the database takes writes, and no fault runs
    assert status.backend == "aws"
    assert roles(backend) == {"db-a": ("writer", "us-east-1a"), "db-b": ("reader", "us-east-1b")}
    assert {instance.status for instance in status.instances} == {"available"}
    assert all(instance.committed_rows is None for instance in status.instances)
    assert status.database_writable is True
    assert status.fault is None


def test_a_failover_swaps_the_roles(moto_stack):
    # GIVEN an available cluster
    backend = moto_stack.backend()
    # WHEN the console fails it over
    run = backend.start_fault("failover", None)
    # THEN the fault is reported started, and the reader is the writer now, each still in its zone
    assert (run.name, run.seconds, run.ended_at, run.error) == ("failover", None, None, None)
    assert roles(backend) == {"db-a": ("reader", "us-east-1a"), "db-b": ("writer", "us-east-1b")}


def described_cluster(
    stubber: Stubber, cluster_status: str, statuses: dict[str, str], writer: str = "db-a"
) -> None:
    """One DescribeDBClusters answer and a DescribeDBInstances answer per member, as RDS gives them."""
    stubber.add_response(
        "describe_db_clusters",
        {
            "DBClusters": [
                {
                    "DBClusterIdentifier": CLUSTER,
                    "DBClusterArn": f"arn:aws:rds:{REGION}:123456789012:cluster:{CLUSTER}",
                    "Status": cluster_status,
                    "Engine": "aurora-mysql",
                    "EngineVersion": "8.0.mysql_aurora.3.08.2",
                    "DBClusterMembers": [
                        {"DBInstanceIdentifier": name, "IsClusterWriter": name == writer} for name in statuses
                    ],
                }
            ]
        },
        {"DBClusterIdentifier": CLUSTER},
    )
    for name, status in statuses.items():
        stubber.add_response(
            "describe_db_instances",
            {
                "DBInstances": [
                    {
                        "DBInstanceIdentifier": name,
                        "DBInstanceStatus": status,
                        "AvailabilityZone": f"{REGION}{'a' if name == 'db-a' else 'b'}",
                    }
                ]
            },
            {"DBInstanceIdentifier": name},
        )


@pytest.fixture
def stubbed_rds() -> Iterator[tuple[Any, Stubber]]:
    rds = boto3.client("rds", region_name=REGION)
    with Stubber(rds) as stubber:
        yield rds, stubber
        stubber.assert_no_pending_responses()


def test_a_restart_reboots_the_instance_that_writes_now(moto_stack, stubbed_rds):
    # GIVEN an available cluster whose writer is db-b (after an earlier failover)
    rds, stubber = stubbed_rds
    for _ in range(2):  # the availability check, then the reboot's own look-up of the writer
        described_cluster(stubber, "available", {"db-a": "available", "db-b": "available"}, writer="db-b")
    stubber.add_response(
        "reboot_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": "db-b"}},
        {"DBInstanceIdentifier": "db-b"},
    )
    # WHEN the console restarts the writer
    run = moto_stack.backend(rds).start_fault("restart", None)
    # THEN RDS is asked to reboot db-b (the Stubber checks the parameters) and the fault is reported
    assert run.name == "restart"


@pytest.mark.parametrize(
    ("cluster_status", "statuses"),
    [
        ("failing-over", {"db-a": "available", "db-b": "available"}),
        ("available", {"db-a": "rebooting", "db-b": "available"}),
        ("available", {"db-a": "available", "db-b": "modifying"}),
    ],
)
@pytest.mark.parametrize("fault", ["failover", "restart"])
def test_a_fault_is_refused_while_the_cluster_or_an_instance_is_not_available(
    moto_stack, stubbed_rds, cluster_status, statuses, fault
):
    # GIVEN a cluster busy with a fault (no FailoverDBCluster or RebootDBInstance answer is stubbed:
    # calling either would fail the test)
    rds, stubber = stubbed_rds
    described_cluster(stubber, cluster_status, statuses)
    # WHEN another fault is asked for THEN it is refused as a conflict (409) that says what is busy
    with pytest.raises(FaultInProgress, match="one fault at a time") as refused:
        moto_stack.backend(rds).start_fault(fault, None)
    assert cluster_status in refused.value.message


def test_a_fault_rds_refuses_as_busy_is_a_conflict_too(moto_stack, stubbed_rds):
    # GIVEN a cluster that looked available, but RDS refuses the failover (another one began meanwhile)
    rds, stubber = stubbed_rds
    for _ in range(2):
        described_cluster(stubber, "available", {"db-a": "available", "db-b": "available"})
    stubber.add_client_error(
        "failover_db_cluster", "InvalidDBClusterStateFault", "DbCluster is not currently in available state"
    )
    # WHEN the console fails it over THEN the answer is a 409, not a server error
    with pytest.raises(FaultInProgress):
        moto_stack.backend(rds).start_fault("failover", None)


def test_an_unknown_fault_is_invalid_input_naming_the_field(moto_stack):
    with pytest.raises(InvalidInput) as refused:
        moto_stack.backend().start_fault("upgrade", None)
    assert refused.value.field == "name"
    assert "failover" in refused.value.message


@pytest.mark.parametrize(
    ("cluster_status", "statuses", "named"),
    [
        ("failing-over", {"db-a": "available", "db-b": "available"}, "failover"),
        ("available", {"db-a": "rebooting", "db-b": "available"}, "restart"),
    ],
)
def test_the_status_names_the_disruption_from_the_clusters_state(
    moto_stack, stubbed_rds, cluster_status, statuses, named
):
    # GIVEN a cluster failing over or rebooting, and no RDS event yet
    rds, stubber = stubbed_rds
    described_cluster(stubber, cluster_status, statuses)
    for source_type, source in (("db-cluster", CLUSTER), ("db-instance", "db-a"), ("db-instance", "db-b")):
        stubber.add_response(
            "describe_events",
            {"Events": []},
            {"SourceType": source_type, "SourceIdentifier": source, "StartTime": T0 - EVENTS_OVERLAP},
        )
    # WHEN the page asks for the status
    status = moto_stack.backend(rds).status(None, T0)
    # THEN the running fault is named, and writes are refused while the writer is not available
    assert status.fault is not None
    assert (status.fault.name, status.fault.ended_at) == (named, None)
    assert status.database_writable is False


def no_events(stubber: Stubber, since: datetime) -> None:
    for source_type, source in (("db-cluster", CLUSTER), ("db-instance", "db-a"), ("db-instance", "db-b")):
        stubber.add_response(
            "describe_events",
            {"Events": []},
            {"SourceType": source_type, "SourceIdentifier": source, "StartTime": since - EVENTS_OVERLAP},
        )


def test_a_failover_is_one_fault_from_its_start_until_the_cluster_is_available_again(moto_stack, stubbed_rds):
    # GIVEN an available cluster the console fails over
    rds, stubber = stubbed_rds
    both_available = {"db-a": "available", "db-b": "available"}
    for _ in range(2):  # the availability check, then the failover's own look-up of the reader
        described_cluster(stubber, "available", both_available)
    stubber.add_response("failover_db_cluster", {}, {"DBClusterIdentifier": CLUSTER})
    backend = moto_stack.backend(rds)
    started = backend.start_fault("failover", None)
    # WHEN the page polls while RDS has not begun yet, then while the cluster fails over, asks for a
    # second fault meanwhile, and polls once the cluster is available again
    polls = []
    for cluster_status in ("available", "failing-over", "failing-over"):
        described_cluster(stubber, cluster_status, both_available)
        no_events(stubber, T0)
        polls.append(backend.status(None, T0).fault)
    described_cluster(stubber, "failing-over", both_available)
    with pytest.raises(FaultInProgress, match="one fault at a time"):
        backend.start_fault("restart", None)
    described_cluster(stubber, "available", both_available, writer="db-b")
    no_events(stubber, T0)
    ended = backend.status(None, T0).fault
    # THEN every poll shows the one failover with the started_at it began with, running until the end
    assert all(poll == started for poll in polls)
    assert started.ended_at is None
    # AND the last has it ended, at a time after its start
    assert ended is not None
    assert (ended.name, ended.started_at) == ("failover", started.started_at)
    assert ended.ended_at is not None
    assert ended.ended_at >= started.started_at


def test_a_fault_just_started_is_refused_a_second_time_while_the_cluster_still_looks_available(
    moto_stack, stubbed_rds
):
    # GIVEN a failover started, RDS still reporting the cluster available
    rds, stubber = stubbed_rds
    for _ in range(2):
        described_cluster(stubber, "available", {"db-a": "available", "db-b": "available"})
    stubber.add_response("failover_db_cluster", {}, {"DBClusterIdentifier": CLUSTER})
    backend = moto_stack.backend(rds)
    backend.start_fault("failover", None)
    described_cluster(stubber, "available", {"db-a": "available", "db-b": "available"})
    # WHEN a second fault is asked for THEN it is a 409 (no RebootDBInstance is stubbed)
    with pytest.raises(FaultInProgress, match="failover is running"):
        backend.start_fault("restart", None)


def test_the_timeline_has_the_rds_events_of_the_cluster_and_its_instances_once_each(moto_stack, stubbed_rds):
    # GIVEN RDS events of the cluster and of an instance, one of them published late (before since)
    # and one that RDS answers twice
    rds, stubber = stubbed_rds
    described_cluster(stubber, "available", {"db-a": "available", "db-b": "available"}, writer="db-b")
    late = (T0 - timedelta(seconds=20), "Started cross AZ failover to DB instance: db-b")
    events = {
        ("db-cluster", CLUSTER): [
            late,
            (T0 + timedelta(seconds=31), "Completed failover to DB instance: db-b"),
        ],
        ("db-instance", "db-a"): [(T0 + timedelta(seconds=12), "DB instance restarted")] * 2,
        ("db-instance", "db-b"): [],
    }
    for (source_type, source), answers in events.items():
        stubber.add_response(
            "describe_events",
            {
                "Events": [
                    {"SourceIdentifier": source, "SourceType": source_type, "Message": message, "Date": at}
                    for at, message in answers
                ]
            },
            {"SourceType": source_type, "SourceIdentifier": source, "StartTime": T0 - EVENTS_OVERLAP},
        )
    # WHEN the page asks for what happened since T0
    status = moto_stack.backend(rds).status(None, T0)
    # THEN it gets them from a minute before, each once, oldest first, from RDS, naming their source
    assert [(event.at, event.source, event.message) for event in status.events] == [
        (late[0], "rds", f"{CLUSTER}: {late[1]}"),
        (T0 + timedelta(seconds=12), "rds", "db-a: DB instance restarted"),
        (T0 + timedelta(seconds=31), "rds", f"{CLUSTER}: Completed failover to DB instance: db-b"),
    ]


# ---- queues ---------------------------------------------------------------------------------------------


def send(sqs: Any, url: str, request_id: str) -> None:
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"request_id": request_id, "customer_id": "console-abcdef-00001"}),
        MessageGroupId="console-abcdef-00001",
        MessageDeduplicationId=request_id,
    )


def test_the_status_counts_visible_in_flight_and_dead_lettered_messages(moto_stack):
    # GIVEN three queued records, one of them being processed, and one dead-lettered record
    for number in range(3):
        send(moto_stack.sqs, moto_stack.queue_url, f"r-{number}")
    moto_stack.sqs.receive_message(QueueUrl=moto_stack.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    send(moto_stack.sqs, moto_stack.dead_letter_url, "r-poison")
    # WHEN the page asks for the status
    queue = moto_stack.backend().status(None, None).queue
    # THEN it shows them (the oldest message's age is a CloudWatch metric, not an SQS attribute: unknown)
    assert (queue.visible, queue.in_flight, queue.dead_letter, queue.oldest_age_s) == (2, 1, 1, None)


def test_the_status_still_answers_when_sqs_does_not(moto_stack):
    # GIVEN a queue URL SQS does not know
    backend = AwsBackend(
        settings(moto_stack.queue_url + "-gone", moto_stack.dead_letter_url), moto_stack.rds, moto_stack.sqs
    )
    # WHEN the page asks for the status THEN the roles are there and the queue's numbers are unknown
    status = backend.status(None, None)
    assert len(status.instances) == 2
    assert (status.queue.visible, status.queue.in_flight, status.queue.dead_letter) == (None, None, None)


def test_a_failover_without_a_reader_to_take_over_is_a_conflict(moto_stack):
    # GIVEN a cluster whose reader is gone
    moto_stack.rds.delete_db_instance(DBInstanceIdentifier="db-b")
    # WHEN the console asks for a failover THEN it is refused as a conflict that says why
    with pytest.raises(Conflict, match="no reader to fail over to"):
        moto_stack.backend().start_fault("failover", None)


def test_a_reconciliation_while_the_database_does_not_answer_is_a_503(moto_stack):
    # GIVEN a cluster endpoint where nothing answers (a port with no server behind it)
    unreachable = settings(moto_stack.queue_url, moto_stack.dead_letter_url).model_copy(
        update={
            "database": DatabaseSettings.from_env(
                {
                    "DB_HOST": "127.0.0.1",
                    "DB_PORT": str(free_port()),
                    "DB_NAME": "ingest",
                    "DB_USER": "reader",
                    "DB_AUTH": "password",
                    "DB_TLS": "off",
                    "DB_CONNECT_TIMEOUT": "1",
                }
            )
        }
    )
    backend = AwsBackend(unreachable, moto_stack.rds, moto_stack.sqs)
    # WHEN the page reconciles THEN it is told to retry (503 with Retry-After), not a server error
    with pytest.raises(Unavailable) as refused:
        backend.reconcile(ReconcileRequest(run_id="abcdef", request_ids=["r-1"]))
    assert refused.value.retry_after_s > 0
