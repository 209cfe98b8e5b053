"""The subcommands' bodies: each reads or acts through the Operator and returns the result to print
(ops/cli.py parses the arguments, ops/render.py writes the result)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest_console import aurora, dead_letters
from ops import alarms, database, dlq
from ops.operator import Operator
from ops.stack import OperatorError


def status(operator: Operator) -> dict[str, Any]:
    cluster = aurora.describe_cluster(operator.rds, operator.cluster_id)
    return {
        "stack": operator.stack.name,
        "outputs": operator.stack.outputs,
        "alarms_in_alarm": operator.alarms_firing(),
        "queue": operator.queue_state() | {"oldest_age_s": operator.oldest_age_s(operator.queue_url)},
        "database": {
            "cluster": cluster.cluster_id,
            "status": cluster.status,
            "engine_version": cluster.engine_version,
            "members": [asdict(member) for member in cluster.members],
        },
        "last_rds_events": operator.last_events(datetime.now(UTC) - timedelta(days=1)),
    }


def dlq_peek(operator: Operator) -> dict[str, Any]:
    letters = dead_letters.peek(
        operator.sqs, operator.dead_letter_url, operator.options.limit, operator.options.wait
    )
    return {"dead_letter_queue": operator.dead_letter_url, "messages": [asdict(letter) for letter in letters]}


def dlq_redrive(operator: Operator) -> dict[str, Any]:
    # Explicit queues without --stack (the local stack) have no alarm to consult.
    alarm = operator.database_unavailable_alarm if operator.options.stack else None
    if alarm and alarms.is_firing(operator.cloudwatch, alarm):
        if not operator.options.force:
            raise OperatorError(
                f"{alarm} is in ALARM: the database is not taking writes, a redriven record would fail again."
                " Wait for it to clear, or pass --force"
            )
        operator.waiter.say(f"{alarm} is in ALARM; redriving anyway (--force)")
    result = dlq.redrive(
        operator.sqs, operator.dead_letter_url, operator.queue_url, operator.waiter, operator.options.timeout
    )
    return {"redrive": asdict(result)}


def _follow_outage(operator: Operator, operation: str, act: Callable[[], object]) -> dict[str, Any]:
    """Run `act` on the writer, follow the RDS events until the cluster is available, then report the
    minutes the consumer found the database unavailable and how long the queue took to drain."""
    before = aurora.describe_cluster(operator.rds, operator.cluster_id)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    act()
    operator.waiter.say(f"{operation} started on {operator.cluster_id}; following its RDS events")
    after = database.wait_until_available(
        operator.rds, operator.cluster_id, operator.waiter, operator.options.timeout
    )
    available_s = time.monotonic() - started
    operator.waiter.until("the queue to drain", lambda: _drained(operator), operator.options.timeout)
    drained_s = time.monotonic() - started
    unavailable = None
    if operator.database_unavailable_alarm:
        unavailable = alarms.breaching_seconds(
            operator.cloudwatch, operator.database_unavailable_alarm, started_at, datetime.now(UTC)
        )
    outage = database.Outage(
        operation=operation,
        old_writer=before.writer.instance_id,
        new_writer=after.writer.instance_id,
        total_s=round(available_s, 1),
        writes_unavailable_s=unavailable,
        backlog_drained_s=round(drained_s, 1),
        events=aurora.recent_events(operator.rds, operator.cluster_id, started_at, after.members),
    )
    return {"outage": asdict(outage)}


def _drained(operator: Operator) -> bool | None:
    state = operator.queue_state()
    return True if state["visible"] + state["in_flight"] == 0 else None


def failover(operator: Operator) -> dict[str, Any]:
    operator.confirm(f"Fail over cluster {operator.cluster_id} (writes pause for about 30 s)?")
    return _follow_outage(operator, "failover", lambda: aurora.fail_over(operator.rds, operator.cluster_id))


def reboot_writer(operator: Operator) -> dict[str, Any]:
    operator.confirm(f"Reboot the writer of cluster {operator.cluster_id} (writes pause until it is back)?")
    return _follow_outage(
        operator, "reboot-writer", lambda: aurora.reboot_writer(operator.rds, operator.cluster_id)
    )


def upgrade(operator: Operator) -> dict[str, Any]:
    firing = operator.alarms_firing()
    if firing:
        names = ", ".join(alarm["name"] for alarm in firing)
        raise OperatorError(f"alarms are firing ({names}): resolve them before an upgrade")
    backlog = operator.queue_state()
    if backlog["visible"] > operator.options.max_backlog or backlog["dead_lettered"]:
        raise OperatorError(
            f"the queue holds {backlog['visible']} records, the dead-letter queue {backlog['dead_lettered']}:"
            f" drain them first (limit --max-backlog {operator.options.max_backlog}, dead-letter queue empty)"
        )
    cluster = aurora.describe_cluster(operator.rds, operator.cluster_id)
    plan = database.plan_upgrade(operator.rds, cluster, operator.options.engine_version)
    if plan.major:
        return _blue_green(operator, cluster, plan)
    operator.confirm(
        f"Upgrade {cluster.cluster_id} in place, {plan.current_version} to {plan.target_version}?"
    )
    report = _follow_outage(
        operator,
        "upgrade",
        lambda: database.upgrade_in_place(operator.rds, cluster.cluster_id, plan.target_version),
    )
    return {"upgrade": asdict(plan)} | report


def _blue_green(operator: Operator, cluster: aurora.Cluster, plan: database.UpgradePlan) -> dict[str, Any]:
    operator.confirm(
        f"Create a blue/green deployment of {cluster.cluster_id} on {plan.target_version}"
        " and switch over once the green cluster is ready?"
    )
    deployment_id = database.create_blue_green(operator.rds, cluster, plan.target_version)
    operator.waiter.say(f"blue/green deployment {deployment_id} created; the green cluster is being built")
    database.wait_for_blue_green(
        operator.rds,
        deployment_id,
        "AVAILABLE",
        "the green cluster",
        operator.waiter,
        operator.options.timeout,
    )
    report = _follow_outage(
        operator, "blue/green switchover", lambda: database.switch_over(operator.rds, deployment_id)
    )
    database.wait_for_blue_green(
        operator.rds,
        deployment_id,
        "SWITCHOVER_COMPLETED",
        "the switchover",
        operator.waiter,
        operator.options.timeout,
    )
    return {"upgrade": asdict(plan), "blue_green_deployment": deployment_id} | report
