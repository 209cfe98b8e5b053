"""python -m ops: the operator CLI's arguments and the errors operators see (the subcommands: ops/commands.py,
their output: ops/render.py, the AWS side: ops/operator.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import boto3
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ingest_console import aurora
from ingest_console.dead_letters import LONGEST_WAIT_S
from ops import verify
from ops.commands import dlq_peek, dlq_redrive, failover, reboot_writer, status, upgrade
from ops.operator import Operator
from ops.render import emit
from ops.stack import OperatorError

DEFAULT_MAX_BACKLOG = 1000
# A peek's receives long-poll (ingest_console.dead_letters): long enough for SQS to answer from all its
# servers, short enough that the peek's last, empty receive does not keep the operator waiting.
DEFAULT_PEEK_WAIT_S = 5


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
        emit(result, options.output, operator.out)
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
