"""Operations on the Aurora cluster that follow through: waiting until it is available, engine upgrades.

What RDS says about the cluster, failover and reboot are ingest_console.aurora's (the demo console uses them
too)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ingest_console.aurora import Cluster, describe_cluster, recent_events
from ops.progress import Waiter
from ops.stack import OperatorError

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import BlueGreenDeploymentTypeDef

# A blue/green deployment in one of these statuses has failed: no wait brings it to the status awaited.
BLUE_GREEN_FAILED = ("INVALID_CONFIGURATION", "SWITCHOVER_FAILED", "PROVISIONING_FAILED")


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


def wait_until_available(rds: RDSClient, cluster_id: str, waiter: Waiter, timeout_s: float) -> Cluster:
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


@dataclass(frozen=True)
class UpgradePlan:
    current_version: str
    target_version: str
    major: bool


def plan_upgrade(rds: RDSClient, cluster: Cluster, target_version: str) -> UpgradePlan:
    """Refuses a version RDS does not list as an upgrade target of the cluster's current one."""
    pages = rds.get_paginator("describe_db_engine_versions").paginate(
        Engine=cluster.engine, EngineVersion=cluster.engine_version
    )
    targets = {
        target["EngineVersion"]: bool(target.get("IsMajorVersionUpgrade"))
        for answer in pages
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


def upgrade_in_place(rds: RDSClient, cluster_id: str, target_version: str) -> None:
    rds.modify_db_cluster(DBClusterIdentifier=cluster_id, EngineVersion=target_version, ApplyImmediately=True)


def blue_green_name(cluster_id: str, target_version: str) -> str:
    """The deployment's name: the cluster and the version in letters, digits and single hyphens, up to 60
    characters, as RDS's BlueGreenDeploymentName requires (an engine version has dots and underscores)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", f"{cluster_id}-{target_version}")[:60].rstrip("-")


def create_blue_green(rds: RDSClient, cluster: Cluster, target_version: str) -> str:
    """A blue/green deployment whose green cluster runs `target_version`; its identifier."""
    name = blue_green_name(cluster.cluster_id, target_version)
    deployment = rds.create_blue_green_deployment(
        BlueGreenDeploymentName=name, Source=cluster.arn, TargetEngineVersion=target_version
    )["BlueGreenDeployment"]
    return str(deployment["BlueGreenDeploymentIdentifier"])


def wait_for_blue_green(
    rds: RDSClient, deployment_id: str, status: str, what: str, waiter: Waiter, timeout_s: float
) -> BlueGreenDeploymentTypeDef:
    """The deployment once RDS reports it in `status`; an error with RDS's StatusDetails if it fails."""

    def in_status() -> BlueGreenDeploymentTypeDef | None:
        found = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment_id)
        deployment = found["BlueGreenDeployments"][0]
        if deployment["Status"] in BLUE_GREEN_FAILED:
            raise OperatorError(
                f"blue/green deployment {deployment_id}: {deployment.get('StatusDetails', '')}"
            )
        return deployment if deployment["Status"] == status else None

    return waiter.until(what, in_status, timeout_s)


def switch_over(rds: RDSClient, deployment_id: str) -> None:
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id)
