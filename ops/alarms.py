"""The stack's CloudWatch alarms: which fire, and what the DatabaseUnavailable alarm's metric recorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

DATABASE_UNAVAILABLE_ALARM = "DatabaseUnavailableAlarm"  # template.yaml's logical id


def firing(cloudwatch: CloudWatchClient, names: list[str]) -> list[dict[str, str]]:
    """The alarms among `names` in ALARM, with their reason."""
    found: list[dict[str, str]] = []
    pages = cloudwatch.get_paginator("describe_alarms")  # an answer may hold fewer alarms than names asked
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        for answer in pages.paginate(AlarmNames=names[start : start + 100]):
            found.extend(
                {"name": alarm["AlarmName"], "reason": alarm.get("StateReason", "")}
                for alarm in answer.get("MetricAlarms", [])
                if alarm["StateValue"] == "ALARM"
            )
    return found


def is_firing(cloudwatch: CloudWatchClient, name: str) -> bool:
    return bool(firing(cloudwatch, [name]))


def breaching_seconds(cloudwatch: CloudWatchClient, alarm_name: str, start: datetime, end: datetime) -> float:
    """How long the alarm's metric was above zero between start and end, to its 60 s resolution (the
    window widened to whole minutes, so an outage shorter than a minute still counts as one)."""
    alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name]).get("MetricAlarms", [])
    if not alarms:
        return 0.0
    alarm = alarms[0]
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm.get("Dimensions", []),
        StartTime=start.replace(second=0, microsecond=0),
        EndTime=end.replace(second=0, microsecond=0) + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    ).get("Datapoints", [])
    return 60.0 * sum(1 for point in datapoints if point.get("Sum", 0) > 0)
