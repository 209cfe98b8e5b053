"""python -m ops: the operator CLI. Arguments, output, and the errors operators see (AWS: ops/operator.py)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ingest_console import aurora, dead_letters
from ingest_console.dead_letters import LONGEST_WAIT_S
from ops import alarms, database, dlq, verify
from ops.operator import Operator
from ops.stack import OperatorError

if TYPE_CHECKING:
    from mypy_boto3_rds.type_defs import BlueGreenDeploymentTypeDef

DEFAULT_MAX_BACKLOG = 1000
# A peek's receives long-poll (ingest_console.dead_letters): long enough for SQS to answer from all its
# servers, short enough that the peek's last, empty receive does not keep the operator waiting.
DEFAULT_PEEK_WAIT_S = 5


def _emit(operator: Operator, result: dict[str, Any] | verify.Report) -> None:
    if isinstance(result, verify.Report):
        operator.out.write(result.json() if operator.options.output == "json" else result.text())
        return
    if operator.options.output == "json":
        json.dump(result, operator.out, indent=2, default=str)
        operator.out.write("\n")
    else:
        _write_text(result, operator.out)


def _write_text(value: Any, out: TextIO, indent: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.write(f"{indent}{key}:\n")
                _write_text(item, out, indent + "  ")
            else:
                out.write(f"{indent}{key}: {_scalar(item)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                out.write(f"{indent}- " + ", ".join(f"{k}={_scalar(v)}" for k, v in item.items()) + "\n")
            else:
                out.write(f"{indent}- {_scalar(item)}\n")


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return "none"
    return str(value)


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


# ---- the subcommands ------------------------------------------------------------------------------


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

    def deployment_in(*states: str) -> BlueGreenDeploymentTypeDef | None:
        found = operator.rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=deployment_id)
        deployment = found["BlueGreenDeployments"][0]
        if deployment["Status"] in ("INVALID_CONFIGURATION", "SWITCHOVER_FAILED", "PROVISIONING_FAILED"):
            raise OperatorError(
                f"blue/green deployment {deployment_id}: {deployment.get('StatusDetails', '')}"
            )
        return deployment if deployment["Status"] in states else None

    operator.waiter.until("the green cluster", lambda: deployment_in("AVAILABLE"), operator.options.timeout)
    report = _follow_outage(
        operator,
        "blue/green switchover",
        lambda: operator.rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment_id),
    )
    operator.waiter.until(
        "the switchover", lambda: deployment_in("SWITCHOVER_COMPLETED"), operator.options.timeout
    )
    return {"upgrade": asdict(plan), "blue_green_deployment": deployment_id} | report


# ---- parsing and errors -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m ops",
        description="Operate a deployed customer-ingest stack (runbooks: docs/operations.md).",
    )
    top.add_argument("--stack", help="CloudFormation stack name (e.g. customer-ingest-prod)")
    top.add_argument("--region", help="AWS region of the stack (default: the profile's or AWS_REGION)")
    top.add_argument("--profile", help="AWS named profile (default: the usual credential chain)")
    top.add_argument("--output", choices=("text", "json"), default="text", help="text, or json for scripts")
    top.add_argument("--poll-interval", type=float, default=5.0, help="seconds between checks on long waits")
    top.add_argument("--timeout", type=float, default=3600.0, help="seconds before a long wait gives up")
    local = top.add_argument_group("explicit queues (the local stack, or a queue not from --stack)")
    local.add_argument(
        "--sqs-endpoint", help="SQS endpoint URL, e.g. the local stack's http://127.0.0.1:9324"
    )
    local.add_argument("--queue-url", help="the source queue's URL (instead of the QueueUrl output)")
    local.add_argument("--dead-letter-queue-url", help="the dead-letter queue's URL (not DeadLetterQueueUrl)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "status",
        help="outputs, alarms in ALARM, queue and dead letters, writer and reader, RDS events",
    ).set_defaults(run=status)

    dead_letters = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(
        dest="dlq_command", required=True, metavar="ACTION"
    )
    peek = dead_letters.add_parser(
        "peek", help="show dead-lettered records; each one shown costs one receive, and stays in the queue"
    )
    peek.add_argument("--limit", type=int, default=10, help="most messages to show (default 10)")
    peek.add_argument(
        "--wait",
        type=_receive_wait,
        default=DEFAULT_PEEK_WAIT_S,
        help=f"seconds each receive waits for messages, 0 to {LONGEST_WAIT_S}"
        f" (default {DEFAULT_PEEK_WAIT_S}); the last receive, which finds none, waits all of it",
    )
    peek.set_defaults(run=dlq_peek)
    redrive = dead_letters.add_parser(
        "redrive",
        help="move dead-lettered records back to the queue (not while DatabaseUnavailable fires)",
    )
    redrive.add_argument("--force", action="store_true", help="even while DatabaseUnavailable is in ALARM")
    redrive.set_defaults(run=dlq_redrive)

    for name, run, what in (
        ("failover", failover, "fail the Aurora cluster over to its reader"),
        ("reboot-writer", reboot_writer, "reboot the Aurora writer instance"),
    ):
        command = commands.add_parser(name, help=f"{what}, follow its RDS events, report the outage")
        command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        command.set_defaults(run=run)

    upgrade_command = commands.add_parser(
        "upgrade", help="engine upgrade: in place (minor) or blue/green (major), guarded and followed"
    )
    upgrade_command.add_argument("--engine-version", required=True, help="target Aurora MySQL engine version")
    upgrade_command.add_argument(
        "--max-backlog", type=int, default=DEFAULT_MAX_BACKLOG, help="refuse above this many queued records"
    )
    upgrade_command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    upgrade_command.set_defaults(run=upgrade)

    verify_command = commands.add_parser(
        "verify", help="after a deploy: check in the account what the template assumes (docs/verify.md)"
    )
    verify_command.add_argument(
        "--record-wait",
        type=float,
        default=verify.RECORD_WAIT_S,
        help="seconds to wait for the record to read back",
    )
    verify_command.add_argument(
        "--trace-wait", type=float, default=verify.TRACE_WAIT_S, help="seconds to wait for the X-Ray trace"
    )
    verify_command.set_defaults(run=verify.run)
    top.set_defaults(yes=False)
    return top


def _receive_wait(text: str) -> int:
    seconds = int(text)
    if not 0 <= seconds <= LONGEST_WAIT_S:
        raise argparse.ArgumentTypeError(f"a receive waits 0 to {LONGEST_WAIT_S} seconds")
    return seconds


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, session: boto3.Session | None = None
) -> int:
    options = parser().parse_args(argv)
    try:
        operator = Operator(options, out or sys.stdout, session)
        result = options.run(operator)
        _emit(operator, result)
    except (OperatorError, aurora.ClusterStateError) as error:
        return _fail(str(error))
    except (NoCredentialsError, PartialCredentialsError):
        return _fail("no AWS credentials: set AWS_PROFILE (or --profile), or run `aws sso login`")
    except NoRegionError:
        return _fail("no AWS region: pass --region or set AWS_REGION")
    except ProfileNotFound as error:
        return _fail(
            f"no AWS profile {error.kwargs.get('profile')}: check --profile or AWS_PROFILE"
            " (aws configure list-profiles)"
        )
    except EndpointConnectionError as error:
        return _fail(f"cannot reach {error.kwargs.get('endpoint_url', 'AWS')}: is --region a real region?")
    except ClientError as error:
        return _fail(_explain(error, options))
    return 1 if isinstance(result, verify.Report) and not result.passed else 0


def _explain(error: ClientError, options: argparse.Namespace) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", str(error))
    if code == "ValidationError" and "does not exist" in message:
        region = options.region or "of your profile"
        return f"stack {options.stack} not found in region {region}: check --stack and --region"
    if code in (
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    ):
        return f"AWS credentials rejected ({code}): refresh them (e.g. `aws sso login`)"
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return f"access denied: {message}"
    return f"{code}: {message}"


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
