"""The Aurora cluster: who writes, failover, reboot of the writer, engine upgrades, and its RDS events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.progress import Waiter
from ops.stack import OperatorError


@dataclass(frozen=True)
class Member:
    instance_id: str
    role: str  # "writer" or "reader"
    availability_zone: str | None
    status: str


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
            raise OperatorError(f"cluster {self.cluster_id} has no writer right now (status {self.status})")
        return writers[0]

    @property
    def available(self) -> bool:
        return self.status == "available" and all(member.status == "available" for member in self.members)


def describe_cluster(rds: Any, cluster_id: str) -> Cluster:
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


def recent_events(rds: Any, cluster_id: str, since: datetime, members: list[Member]) -> list[dict[str, str]]:
    """RDS events of the cluster and its instances since `since`, oldest first."""
    events: list[dict[str, str]] = []
    sources = [("db-cluster", cluster_id)] + [("db-instance", member.instance_id) for member in members]
    for source_type, source_id in sources:
        answer = rds.describe_events(SourceType=source_type, SourceIdentifier=source_id, StartTime=since)
        events.extend(
            {
                "time": event["Date"].isoformat(),
                "source": event["SourceIdentifier"],
                "message": event["Message"],
            }
            for event in answer.get("Events", [])
        )
    return sorted(events, key=lambda event: event["time"])


@dataclass(frozen=True)
class Outage:
    """What an operation on the writer cost: how long writes were refused and the backlog took to drain."""

    operation: str
    old_writer: str
    new_writer: str
    total_s: float
    writes_unavailable_s: float | None
    backlog_drained_s: float | None
    events: list[dict[str, str]]


def wait_until_available(rds: Any, cluster_id: str, waiter: Waiter, timeout_s: float) -> Cluster:
    seen: set[str] = set()
    started = datetime.now(UTC)

    def available() -> Cluster | None:
        cluster = describe_cluster(rds, cluster_id)
        for event in recent_events(rds, cluster_id, started - timedelta(minutes=1), cluster.members):
            key = event["time"] + event["message"]
            if key not in seen:
                seen.add(key)
                waiter.say(f"{event['time']} {event['source']}: {event['message']}")
        return cluster if cluster.available else None

    return waiter.until(f"cluster {cluster_id} to be available", available, timeout_s)


def fail_over(rds: Any, cluster_id: str) -> None:
    cluster = describe_cluster(rds, cluster_id)
    if len(cluster.members) < 2:
        raise OperatorError(f"cluster {cluster_id} has no reader to fail over to")
    rds.failover_db_cluster(DBClusterIdentifier=cluster_id)


def reboot_writer(rds: Any, cluster_id: str) -> None:
    rds.reboot_db_instance(DBInstanceIdentifier=describe_cluster(rds, cluster_id).writer.instance_id)


@dataclass(frozen=True)
class UpgradePlan:
    current_version: str
    target_version: str
    major: bool


def plan_upgrade(rds: Any, cluster: Cluster, target_version: str) -> UpgradePlan:
    """Refuses a version RDS does not list as an upgrade target of the cluster's current one."""
    answer = rds.describe_db_engine_versions(Engine=cluster.engine, EngineVersion=cluster.engine_version)
    targets = {
        target["EngineVersion"]: bool(target.get("IsMajorVersionUpgrade"))
        for version in answer.get("DBEngineVersions", [])
        for target in version.get("ValidUpgradeTarget", [])
    }
    if target_version not in targets:
        valid = ", ".join(sorted(targets)) or "none"
        raise OperatorError(
            f"{target_version} is not an upgrade target of {cluster.engine} {cluster.engine_version}"
            f" (valid: {valid})"
        )
    return UpgradePlan(cluster.engine_version, target_version, targets[target_version])


def upgrade_in_place(rds: Any, cluster_id: str, target_version: str) -> None:
    rds.modify_db_cluster(DBClusterIdentifier=cluster_id, EngineVersion=target_version, ApplyImmediately=True)


def create_blue_green(rds: Any, cluster: Cluster, target_version: str) -> str:
    """A blue/green deployment whose green cluster runs `target_version`; its identifier."""
    name = f"{cluster.cluster_id}-{target_version.replace('.', '-')}"[:60]
    deployment = rds.create_blue_green_deployment(
        BlueGreenDeploymentName=name, Source=cluster.arn, TargetEngineVersion=target_version
    )["BlueGreenDeployment"]
    return str(deployment["BlueGreenDeploymentIdentifier"])
