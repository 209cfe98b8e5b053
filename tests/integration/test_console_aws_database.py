"""The demo console's AWS backend on the database side, against a real MariaDB: a run's rows counted on
each instance and the reconciliation, as a SELECT-only user (the stack's read-only user, with a password
here instead of an IAM token). RDS answers from a Stubber (instance endpoints pointing at the MariaDB,
and at a port where nothing listens for an instance that is down); SQS is moto's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pymysql
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ingest.models import QueueMessage
from ingest.repository import store_batch
from ingest.schema import READER_PRIVILEGES, ensure_function_user
from ingest_console.aws import AwsBackend
from ingest_console.config import ConsoleSettings
from ingest_console.contract import ReconcileRequest, run_prefix
from local.servers import free_port
from local.template import Template
from local.testdata import queue_message

REGION = "us-east-1"
CLUSTER = "customer-ingest-dev"
RUN = "run4812abc"
T0_US = 1_764_529_200_000_000  # 2025-11-30T19:00:00Z, microseconds


@dataclass(frozen=True)
class ReadOnlyUser:
    name: str
    password: str


@pytest.fixture
def read_only_user(fresh_database) -> Iterator[ReadOnlyUser]:
    """A user with the stack's reader privileges (SELECT only) on the test database."""
    user = ReadOnlyUser(f"ro_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex)
    with fresh_database.server.connect() as connection:
        ensure_function_user(
            connection, user.name, fresh_database.name, f"IDENTIFIED BY '{user.password}'", READER_PRIVILEGES
        )
    yield user
    with fresh_database.server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS '{user.name}'@'%'")


def stored(fresh_database, *messages: dict[str, Any]) -> None:
    """Commit the messages as the consumer does (ingest.repository.store_batch, one transaction)."""
    with fresh_database.server.connect(fresh_database.name, autocommit=False) as connection:
        store_batch(connection, [QueueMessage.model_validate(message) for message in messages])


def console_request(number: int, key: str | None = None, at_us: int = T0_US) -> dict[str, Any]:
    """A request of the run as the page sends it: customer id with the run's prefix, the key in attributes."""
    customer = f"{run_prefix(RUN)}{number % 3:05d}"
    key = key or f"key-{number}"
    return queue_message(
        customer, at_us + number * 1000, f"r-{number}", attributes={"console_key": key, "sequence": number}
    )


class Cluster:
    """RDS as a Stubber: db-a (the writer) at the MariaDB, db-b (the reader) at a port nothing listens on."""

    def __init__(self, server_port: int) -> None:
        self.rds: Any = boto3.client("rds", region_name=REGION)
        self.stubber = Stubber(self.rds)
        self.endpoints = {"db-a": ("127.0.0.1", server_port), "db-b": ("127.0.0.1", free_port())}

    def described(self) -> None:
        self.stubber.add_response(
            "describe_db_clusters",
            {
                "DBClusters": [
                    {
                        "DBClusterIdentifier": CLUSTER,
                        "DBClusterArn": f"arn:aws:rds:{REGION}:123456789012:cluster:{CLUSTER}",
                        "Status": "available",
                        "Engine": "aurora-mysql",
                        "EngineVersion": "8.0.mysql_aurora.3.08.2",
                        "DBClusterMembers": [
                            {"DBInstanceIdentifier": "db-a", "IsClusterWriter": True},
                            {"DBInstanceIdentifier": "db-b", "IsClusterWriter": False},
                        ],
                    }
                ]
            },
        )
        for name, (host, port) in self.endpoints.items():
            self.stubber.add_response(
                "describe_db_instances",
                {
                    "DBInstances": [
                        {
                            "DBInstanceIdentifier": name,
                            "DBInstanceStatus": "available",
                            "AvailabilityZone": f"{REGION}a",
                            "Endpoint": {"Address": host, "Port": port},
                        }
                    ]
                },
                {"DBInstanceIdentifier": name},
            )
        for _ in range(3):  # the cluster's events and each instance's: none
            self.stubber.add_response("describe_events", {"Events": []})


@pytest.fixture
def aws(fresh_database, read_only_user) -> Iterator[tuple[AwsBackend, Cluster, Any, str]]:
    """The backend as the console function builds it, with the read-only user, moto's queues, RDS stubbed."""
    with mock_aws():
        sqs: Any = boto3.client("sqs", region_name=REGION)
        template = Template()
        urls = {}
        for logical_id in ("CustomerDeadLetterQueue", "CustomerQueue"):
            queue = template.queue(logical_id)
            urls[logical_id] = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]
        server = fresh_database.server
        settings = ConsoleSettings.from_env(
            {
                "DB_HOST": server.host,
                "DB_PORT": str(server.port),
                "DB_NAME": fresh_database.name,
                "DB_USER": read_only_user.name,
                "DB_PASSWORD": read_only_user.password,
                "DB_AUTH": "password",
                "DB_TLS": "off",
                "DB_CONNECT_TIMEOUT": "1",
                "DB_READ_TIMEOUT": "1",
                "DB_CLUSTER_ID": CLUSTER,
                "QUEUE_URL": urls["CustomerQueue"],
                "DEAD_LETTER_QUEUE_URL": urls["CustomerDeadLetterQueue"],
                "SIGN_IN_DOMAIN": f"ingest-1.auth.{REGION}.amazoncognito.com",
                "CONSOLE_CLIENT_ID": "console-client",
            }
        )
        cluster = Cluster(server.port)
        with cluster.stubber:
            yield AwsBackend(settings, cluster.rds, sqs), cluster, sqs, urls["CustomerDeadLetterQueue"]


def test_the_read_only_user_cannot_write(fresh_database, read_only_user):
    # GIVEN the user the console reads with WHEN it tries to write THEN the database refuses
    with (
        pymysql.connect(
            host=fresh_database.server.host,
            port=fresh_database.server.port,
            user=read_only_user.name,
            password=read_only_user.password,
            database=fresh_database.name,
        ) as connection,
        connection.cursor() as cursor,
        pytest.raises(pymysql.err.OperationalError, match="denied"),
    ):
        cursor.execute("DELETE FROM customer_records")


def test_rows_are_counted_per_instance_for_the_run_only(fresh_database, aws):
    # GIVEN four rows of the run and two of another run, and a reader instance that is down
    backend, cluster, _, _ = aws
    stored(fresh_database, *(console_request(number) for number in range(4)))
    stored(
        fresh_database,
        queue_message(f"{run_prefix('otherrun1')}00001", T0_US, "r-other-1"),
        queue_message(f"{run_prefix('otherrun1')}00002", T0_US, "r-other-2"),
    )
    cluster.described()
    # WHEN the page asks for the run's status
    status = backend.status(RUN, datetime.now(UTC))
    # THEN the writer's count is the run's rows, and the instance that did not answer has no count
    counts = {instance.name: instance.committed_rows for instance in status.instances}
    assert counts == {"db-a": 4, "db-b": None}
    cluster.stubber.assert_no_pending_responses()


def test_the_reconciliation_finds_committed_lost_duplicated_stale_and_dead_lettered(fresh_database, aws):
    # GIVEN a run whose requests r-0..r-5 the page saw acknowledged:
    backend, _, sqs, dead_letter_url = aws
    # r-0..r-3 committed; r-4 committed twice under a second request id for the same key (a duplicate)
    stored(fresh_database, *(console_request(number) for number in range(5)))
    stored(fresh_database, console_request(6, key="key-4"))
    # r-5 parked in the dead-letter queue; r-9 never stored anywhere (lost)
    sqs.send_message(
        QueueUrl=dead_letter_url,
        MessageBody=json.dumps(console_request(5)),
        MessageGroupId=console_request(5)["customer_id"],
        MessageDeduplicationId="r-5",
    )
    # and one customer's profile pointed back at an older record behind the pipeline's back
    newest = console_request(3)
    with fresh_database.server.connect(fresh_database.name) as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers SET request_id = 'r-0', accepted_at = "
            "(SELECT accepted_at FROM customer_records WHERE request_id = 'r-0') WHERE customer_id = %s",
            (newest["customer_id"],),
        )
    # WHEN the page reconciles what it was told
    asked = ["r-0", "r-1", "r-2", "r-3", "r-4", "r-5", "r-9"]
    answer = backend.reconcile(ReconcileRequest(run_id=RUN, request_ids=asked))
    # THEN the ledger holds r-0..r-4, r-5 is dead-lettered, so r-9 is the one lost
    assert sorted(answer.committed) == ["r-0", "r-1", "r-2", "r-3", "r-4"]
    assert answer.dead_lettered == ["r-5"]
    assert set(asked) - set(answer.committed) - set(answer.dead_lettered) == {"r-9"}
    # AND the run's totals count the extra row as a duplicate and the bent profile as stale
    run = answer.run
    assert (run.rows, run.distinct_keys, run.duplicates, run.stale_profiles) == (6, 5, 1, 1)
    assert run.lag_p50_ms is not None
    assert run.lag_p99_ms is not None
    assert run.lag_p99_ms >= run.lag_p50_ms > 0
    # AND the dead-lettered message is still there, visible, for the redrive
    attributes = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"],
        attributes["ApproximateNumberOfMessagesNotVisible"],
    ) == (
        "1",
        "0",
    )


def test_a_row_deleted_after_it_was_seen_is_no_longer_committed(fresh_database, aws):
    # GIVEN a committed request of the run
    backend, _, _, _ = aws
    stored(fresh_database, console_request(1))
    request = ReconcileRequest(run_id=RUN, request_ids=["r-1"])
    assert backend.reconcile(request).committed == ["r-1"]
    # WHEN its row is deleted behind the pipeline's back
    with fresh_database.server.connect(fresh_database.name) as connection, connection.cursor() as cursor:
        cursor.execute("DELETE FROM customer_records WHERE request_id = 'r-1'")
    # THEN the next reconciliation no longer finds it: the console sees the loss
    answer = backend.reconcile(request)
    assert answer.committed == []
    assert answer.run.rows == 0
