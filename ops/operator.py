"""The operator's side of one CLI invocation: its options, the AWS clients, the stack, the readings the
subcommands share."""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

import boto3

from ingest_console import aurora, dead_letters
from ingest_console.queues import queue_depth
from ops import alarms
from ops.progress import Waiter
from ops.stack import OperatorError, StackTargets, describe_stack

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import FilteredLogEventTypeDef
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient
    from mypy_boto3_wafv2 import WAFV2Client
    from mypy_boto3_xray import XRayClient

# template.yaml's logical ids of what the CLI looks up among the stack's resources.
RDS_EVENTS_LOG_GROUP = "RdsEventsLogGroup"
EVENTS_SHOWN = 10


class Operator:
    """One invocation: its options, the AWS clients, the stack (described once), and where output goes."""

    def __init__(
        self, options: argparse.Namespace, out: TextIO, session: boto3.Session | None = None
    ) -> None:
        self.options = options
        self.out = out
        self.session = session or boto3.Session(profile_name=options.profile, region_name=options.region)
        self.waiter = Waiter(interval_s=options.poll_interval)

    @cached_property
    def stack(self) -> StackTargets:
        if not self.options.stack:
            raise OperatorError("--stack NAME is required for this command")
        return describe_stack(self.cloudformation, self.options.stack)

    # ---- the AWS clients, one per service, made when first used ----------------------------------------

    @cached_property
    def sqs(self) -> SQSClient:
        return self.session.client("sqs", endpoint_url=self.options.sqs_endpoint)

    @cached_property
    def rds(self) -> RDSClient:
        return self.session.client("rds")

    @cached_property
    def cloudwatch(self) -> CloudWatchClient:
        return self.session.client("cloudwatch")

    @cached_property
    def logs(self) -> CloudWatchLogsClient:
        return self.session.client("logs")

    @cached_property
    def cloudformation(self) -> CloudFormationClient:
        return self.session.client("cloudformation")

    @cached_property
    def sts(self) -> STSClient:
        return self.session.client("sts")

    @cached_property
    def apigateway(self) -> APIGatewayClient:
        return self.session.client("apigateway")

    @cached_property
    def wafv2(self) -> WAFV2Client:
        return self.session.client("wafv2")

    @cached_property
    def cognito(self) -> CognitoIdentityProviderClient:
        return self.session.client("cognito-idp")

    @cached_property
    def sns(self) -> SNSClient:
        return self.session.client("sns")

    @cached_property
    def xray(self) -> XRayClient:
        return self.session.client("xray")

    @cached_property
    def lambda_(self) -> LambdaClient:
        return self.session.client("lambda")

    @property
    def queue_url(self) -> str:
        return str(self.options.queue_url or self.stack.output("QueueUrl"))

    @property
    def dead_letter_url(self) -> str:
        return str(self.options.dead_letter_queue_url or self.stack.output("DeadLetterQueueUrl"))

    @property
    def cluster_id(self) -> str:
        return self.stack.output("DatabaseClusterId")

    @property
    def database_unavailable_alarm(self) -> str | None:
        return self.stack.resource(alarms.DATABASE_UNAVAILABLE_ALARM)

    def alarms_firing(self) -> list[dict[str, str]]:
        return alarms.firing(self.cloudwatch, self.stack.physical_ids_of_type("AWS::CloudWatch::Alarm"))

    def queue_state(self) -> dict[str, int]:
        visible, in_flight = queue_depth(self.sqs, self.queue_url)
        return {
            "visible": visible,
            "in_flight": in_flight,
            "dead_lettered": dead_letters.message_count(self.sqs, self.dead_letter_url),
        }

    def oldest_age_s(self, queue_url: str) -> float | None:
        """ApproximateAgeOfOldestMessage of the queue over the last 5 minutes (CloudWatch, 60 s)."""
        now = datetime.now(UTC)
        points = self.cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_url.rstrip("/").rsplit("/", 1)[-1]}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
        if not points:
            return None
        return float(max(points, key=lambda point: point["Timestamp"])["Maximum"])

    def last_events(self, since: datetime) -> list[dict[str, str]]:
        """The RDS event timeline: the stack's RDS events log group, or RDS's own event list without one."""
        log_group = self.stack.resource(RDS_EVENTS_LOG_GROUP)
        if log_group:
            # FilterLogEvents answers in pages, oldest first, a page possibly empty before the last
            # (CloudWatch Logs API Reference); the paginator follows nextToken to the end, only the newest
            # EVENTS_SHOWN are kept on the way.
            pages = self.logs.get_paginator("filter_log_events")
            newest = deque(
                (
                    event
                    for answer in pages.paginate(
                        logGroupName=log_group, startTime=int(since.timestamp() * 1000)
                    )
                    for event in answer.get("events", [])
                ),
                maxlen=EVENTS_SHOWN,
            )
            events = [
                {
                    "time": datetime.fromtimestamp(event["timestamp"] / 1000, UTC).isoformat(),
                    **_rds_detail(event),
                }
                for event in newest
            ]
        else:
            cluster = aurora.describe_cluster(self.rds, self.cluster_id)
            events = aurora.recent_events(self.rds, self.cluster_id, since, cluster.members)
        return events[-EVENTS_SHOWN:]

    def confirm(self, question: str) -> None:
        if self.options.yes:
            return
        if not sys.stdin.isatty():
            raise OperatorError(f"{question}: no terminal to confirm on; pass --yes to proceed")
        if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
            raise OperatorError("cancelled")


def _rds_detail(event: FilteredLogEventTypeDef) -> dict[str, str]:
    """The source and message of an RDS event as EventBridge delivered it to the log group."""
    try:
        detail = json.loads(event["message"]).get("detail", {})
    except (ValueError, AttributeError):
        return {"source": "", "message": str(event.get("message", ""))}
    return {"source": str(detail.get("SourceIdentifier", "")), "message": str(detail.get("Message", ""))}
