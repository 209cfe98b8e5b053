"""The AWS the demo console's function sees, in moto: the Aurora cluster of two instances and the
template's two FIFO queues, and the settings template.yaml gives the function."""

from __future__ import annotations

from typing import Any

import boto3

from ingest_console.aws import AwsBackend
from ingest_console.config import ConsoleSettings
from local.template import Template

REGION = "us-east-1"
CLUSTER = "customer-ingest-dev"
SIGN_IN_DOMAIN = f"ingest-1234.auth.{REGION}.amazoncognito.com"
CONSOLE_CLIENT_ID = "console-client-id"


def console_env(queue_url: str, dead_letter_url: str) -> dict[str, str]:
    """What template.yaml gives the console function: the read-only user, an IAM token, verified TLS."""
    return {
        "DB_HOST": f"{CLUSTER}.cluster-abc.{REGION}.rds.amazonaws.com",
        "DB_NAME": "ingest",
        "DB_USER": "ingest_reader",
        "DB_AUTH": "iam",
        "DB_TLS": "verify",
        "DB_CLUSTER_ID": CLUSTER,
        "QUEUE_URL": queue_url,
        "DEAD_LETTER_QUEUE_URL": dead_letter_url,
        "SIGN_IN_DOMAIN": SIGN_IN_DOMAIN,
        "CONSOLE_CLIENT_ID": CONSOLE_CLIENT_ID,
    }


def settings(queue_url: str, dead_letter_url: str) -> ConsoleSettings:
    """The console function's settings, with a password and no TLS: no database is reached here."""
    return ConsoleSettings.from_env(
        console_env(queue_url, dead_letter_url) | {"DB_AUTH": "password", "DB_TLS": "off"}
    )


class MotoStack:
    """The cluster (writer db-a in one zone, reader db-b in another) and the two queues, in moto."""

    def __init__(self) -> None:
        self.rds: Any = boto3.client("rds", region_name=REGION)
        self.sqs: Any = boto3.client("sqs", region_name=REGION)
        self.rds.create_db_cluster(
            DBClusterIdentifier=CLUSTER,
            Engine="aurora-mysql",
            MasterUsername="ingest_admin",
            ManageMasterUserPassword=True,
        )
        for instance, zone in (("db-a", "us-east-1a"), ("db-b", "us-east-1b")):
            self.rds.create_db_instance(
                DBInstanceIdentifier=instance,
                DBClusterIdentifier=CLUSTER,
                Engine="aurora-mysql",
                DBInstanceClass="db.t4g.medium",
                AvailabilityZone=zone,
            )
        template = Template()
        urls = {}
        for logical_id in ("CustomerDeadLetterQueue", "CustomerQueue"):
            queue = template.queue(logical_id)
            urls[logical_id] = self.sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)[
                "QueueUrl"
            ]
        self.queue_url = urls["CustomerQueue"]
        self.dead_letter_url = urls["CustomerDeadLetterQueue"]

    def console_env(self) -> dict[str, str]:
        return console_env(self.queue_url, self.dead_letter_url)

    def backend(self, rds: Any = None) -> AwsBackend:
        return AwsBackend(settings(self.queue_url, self.dead_letter_url), rds or self.rds, self.sqs)
