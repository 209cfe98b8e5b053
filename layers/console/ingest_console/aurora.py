"""The Aurora cluster as RDS describes it: who writes, in which zone, in what state; failover, reboot of
the writer, and the RDS events of the cluster and its instances. The operator CLI (ops) and the demo
console's AWS backend (ingest_console.aws) both act through these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # boto3-stubs' types: development only, the layer does not ship them
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.literals import SourceTypeType


class ClusterStateError(RuntimeError):
    """The cluster cannot do what was asked in its present state (no writer, no reader to fail over to)."""


@dataclass(frozen=True)
class Member:
    instance_id: str
    role: str  # "writer" or "reader"
    availability_zone: str | None
    status: str
    endpoint: str | None = None  # the instance endpoint's address and port (none while RDS creates it)
    port: int | None = None


@dataclass(frozen=True)
class Cluster:
    cluster_id: str
    arn: str
    status: str
    engine: str
    engine_version: str
    members: list[Member]

    @property
    def writer(self) -> Member:
        writers = [member for member in self.members if member.role == "writer"]
        if not writers:
            raise ClusterStateError(
                f"cluster {self.cluster_id} has no writer right now (status {self.status})"
            )
        return writers[0]

    @property
    def available(self) -> bool:
        return self.status == "available" and all(member.status == "available" for member in self.members)


def describe_cluster(rds: RDSClient, cluster_id: str) -> Cluster:
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
    members = []
    for member in cluster.get("DBClusterMembers", []):
        instance_id = member["DBInstanceIdentifier"]
        instance = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
        members.append(
            Member(
                instance_id=instance_id,
                role="writer" if member["IsClusterWriter"] else "reader",
                availability_zone=instance.get("AvailabilityZone"),
                status=instance.get("DBInstanceStatus", "unknown"),
                endpoint=instance.get("Endpoint", {}).get("Address"),
                port=instance.get("Endpoint", {}).get("Port"),
            )
        )
    return Cluster(
        cluster_id=cluster_id,
        arn=cluster["DBClusterArn"],
        status=cluster["Status"],
        engine=cluster["Engine"],
        engine_version=cluster["EngineVersion"],
        members=members,
    )


def recent_events(
    rds: RDSClient, cluster_id: str, since: datetime, members: list[Member]
) -> list[dict[str, str]]:
    """RDS events of the cluster and its instances since `since`, oldest first."""
    events: list[dict[str, str]] = []
    sources: list[tuple[SourceTypeType, str]] = [("db-cluster", cluster_id)]
    sources += [("db-instance", member.instance_id) for member in members]
    pages = rds.get_paginator("describe_events")  # at most 100 events per answer
    for source_type, source_id in sources:
        for answer in pages.paginate(SourceType=source_type, SourceIdentifier=source_id, StartTime=since):
            events.extend(
                {
                    "time": event["Date"].isoformat(),
                    "source": event["SourceIdentifier"],
                    "message": event["Message"],
                }
                for event in answer.get("Events", [])
            )
    return sorted(events, key=lambda event: event["time"])


def fail_over(rds: RDSClient, cluster_id: str) -> None:
    cluster = describe_cluster(rds, cluster_id)
    if len(cluster.members) < 2:
        raise ClusterStateError(f"cluster {cluster_id} has no reader to fail over to")
    rds.failover_db_cluster(DBClusterIdentifier=cluster_id)


def reboot_writer(rds: RDSClient, cluster_id: str) -> None:
    rds.reboot_db_instance(DBInstanceIdentifier=describe_cluster(rds, cluster_id).writer.instance_id)
