"""The operator CLI (python -m ops) against moto (CloudFormation, SQS, CloudWatch) and botocore's Stubber
(RDS, and the SQS message move tasks moto does not implement)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from ops.cli import main

REGION = "eu-west-1"
STACK = "customer-ingest-test"
CLUSTER = "ingest-cluster"
# The parts of template.yaml the CLI reads, under the same logical ids and output keys (moto's
# CloudFormation has no AWS::CloudWatch::Alarm: the alarm is created apart and listed by `with_alarm`).
TEMPLATE = {
    "Resources": {
        "CustomerDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": "customers-dlq.fifo", "FifoQueue": True},
        },
        "CustomerQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": "customers.fifo",
                "FifoQueue": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["CustomerDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 25,
                },
            },
        },
    },
    "Outputs": {
        "QueueUrl": {"Value": {"Ref": "CustomerQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "CustomerDeadLetterQueue"}},
        "DatabaseClusterId": {"Value": CLUSTER},
    },
}
ALARM = "customer-ingest-test-database-unavailable"


class Session:
    """boto3.Session's `client` as the CLI calls it: moto's clients, or a stubbed one per service."""

    def __init__(self, **stubbed: Any) -> None:
        self.stubbed = stubbed

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        return self.stubbed.get(service) or boto3.client(service, region_name=REGION)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def stack(aws: None) -> dict[str, str]:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
    outputs = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


def resource_summary(logical_id: str, resource_type: str, physical_id: str) -> dict[str, Any]:
    """A StackResourceSummary of ListStackResources."""
    return {
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical_id,
        "ResourceType": resource_type,
        "LastUpdatedTimestamp": datetime.now(UTC),
        "ResourceStatus": "CREATE_COMPLETE",
    }


def with_alarm(pages: int = 1, **more: tuple[str, str]) -> Any:
    """The stack's CloudFormation answers (moto's) with DatabaseUnavailableAlarm among its resources, as
    a deployed stack lists it (the alarm itself is moto's), and `more` resources: logical id ->
    (type, physical id). ListStackResources answers in `pages` pages: 100 other resources on each page
    before the last, which holds moto's resources, the alarm and `more`."""
    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName=ALARM,
        Namespace="CustomerIngest",
        MetricName="DatabaseUnavailable",
        Dimensions=[{"Name": "service", "Value": "customer-ingest"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=3,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    real = boto3.client("cloudformation", region_name=REGION)
    summaries = real.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    listed = {"DatabaseUnavailableAlarm": ("AWS::CloudWatch::Alarm", ALARM)} | more
    last_page = summaries + [
        resource_summary(logical_id, kind, physical_id) for logical_id, (kind, physical_id) in listed.items()
    ]
    stubbed = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(stubbed)
    stubber.add_response("describe_stacks", real.describe_stacks(StackName=STACK), {"StackName": STACK})
    for page in range(1, pages + 1):
        asked = {"StackName": STACK} | ({"NextToken": f"page-{page}"} if page > 1 else {})
        if page < pages:
            others = [
                resource_summary(f"Function{page}x{n}", "AWS::Lambda::Function", f"function-{page}-{n}")
                for n in range(100)
            ]
            answer = {"StackResourceSummaries": others, "NextToken": f"page-{page + 1}"}
        else:
            answer = {"StackResourceSummaries": last_page}
        stubber.add_response("list_stack_resources", answer, asked)
    stubber.activate()
    return stubbed


def run(*argv: str, session: Any = None) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--region", REGION, "--poll-interval", "0", *argv], out=out, session=session or Session())
    return code, out.getvalue()


def dead_letter(stack: dict[str, str], customer_id: str, request_id: str) -> None:
    body = json.dumps({"request_id": request_id, "customer_id": customer_id, "accepted_at": 1, "payload": {}})
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=stack["DeadLetterQueueUrl"],
        MessageBody=body,
        MessageGroupId=customer_id,
        MessageDeduplicationId=request_id,
    )


def visible(url: str) -> int:
    attributes = boto3.client("sqs", region_name=REGION).get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


# ---- dlq peek -----------------------------------------------------------------------------------------


def test_peek_shows_dead_letters_and_leaves_them_visible(stack: dict[str, str]) -> None:
    """GIVEN two customers' records in the dead-letter queue WHEN `dlq peek --output json` runs
    THEN it lists both with their request and customer ids and one receive each, AND both are still
    there and visible at once (a redrive or a second peek sees them)."""
    dead_letter(stack, "alice", "req-a")
    dead_letter(stack, "bob", "req-b")

    code, out = run("--stack", STACK, "--output", "json", "dlq", "peek")

    assert code == 0
    messages = json.loads(out)["messages"]
    assert sorted((m["customer_id"], m["request_id"]) for m in messages) == [
        ("alice", "req-a"),
        ("bob", "req-b"),
    ]
    assert [m["receive_count"] for m in messages] == [1, 1]
    assert visible(stack["DeadLetterQueueUrl"]) == 2
    _, again = run("--stack", STACK, "--output", "json", "dlq", "peek")
    assert [m["receive_count"] for m in json.loads(again)["messages"]] == [2, 2], "one receive per peek"


def test_peek_takes_explicit_queue_urls_without_a_stack(stack: dict[str, str]) -> None:
    """GIVEN a dead-letter queue given by URL (as on the local stack) WHEN peeked without --stack
    THEN its messages are shown as text."""
    dead_letter(stack, "carol", "req-c")

    code, out = run("--dead-letter-queue-url", stack["DeadLetterQueueUrl"], "dlq", "peek")

    assert code == 0
    assert "customer_id=carol" in out
    assert "request_id=req-c" in out


def test_peek_waits_for_a_dead_letter_another_look_holds(stack: dict[str, str]) -> None:
    """GIVEN a dead letter received by another look at the queue (a console's peek), hidden for one more
    second WHEN `dlq peek --output json` runs THEN its long poll waits for it and shows it, where a short
    poll answers at once that the queue is empty."""
    dead_letter(stack, "alice", "req-a")
    sqs = boto3.client("sqs", region_name=REGION)
    assert sqs.receive_message(QueueUrl=stack["DeadLetterQueueUrl"], VisibilityTimeout=1)["Messages"]

    code, out = run("--stack", STACK, "--output", "json", "dlq", "peek")

    assert code == 0
    assert [m["request_id"] for m in json.loads(out)["messages"]] == ["req-a"]


def test_peek_refuses_a_wait_sqs_does_not_take(capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN a --wait beyond ReceiveMessage's 20 s WHEN `dlq peek` is parsed THEN it is refused (exit 2)."""
    with pytest.raises(SystemExit) as exit_:
        main(["dlq", "peek", "--wait", "21"])

    assert exit_.value.code == 2
    assert "a receive waits 0 to 20 seconds" in capsys.readouterr().err


# ---- dlq redrive --------------------------------------------------------------------------------------


def test_redrive_is_refused_while_the_database_is_unavailable(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a dead letter and DatabaseUnavailable in ALARM WHEN `dlq redrive` runs without --force
    THEN it exits 1 naming the alarm and --force, AND the message stays in the dead-letter queue."""
    dead_letter(stack, "alice", "req-a")
    cloudformation = with_alarm()
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="test"
    )

    code, _ = run("--stack", STACK, "dlq", "redrive", session=Session(cloudformation=cloudformation))

    assert code == 1
    error = capsys.readouterr().err
    assert ALARM in error
    assert "--force" in error
    assert visible(stack["DeadLetterQueueUrl"]) == 1


def within_one_minute() -> None:
    """Wait, if need be, for a new minute to have begun: a metric put now and the command run next fall
    in the same minute of CloudWatch's 60 s resolution, as in a real outage of a minute."""
    seconds = datetime.now(UTC).second
    if seconds >= 50:
        time.sleep(61 - seconds)


def depth(messages: int) -> dict[str, str]:
    """GetQueueAttributes' answer for a queue of `messages`, none of them received at the moment."""
    return {"ApproximateNumberOfMessages": str(messages), "ApproximateNumberOfMessagesNotVisible": "0"}


def stubbed_move(stack: dict[str, str], final: dict[str, Any], unlisted: int = 0) -> Stubber:
    """moto has no message move tasks: SQS answers from a Stubber, a task not listed `unlisted` times
    (ListMessageMoveTasks answering no task), RUNNING once, then `final`."""
    sqs = boto3.client("sqs", region_name=REGION)
    stubber = Stubber(sqs)
    dlq_arn = "arn:aws:sqs:eu-west-1:123456789012:customers-dlq.fifo"
    queue_arn = "arn:aws:sqs:eu-west-1:123456789012:customers.fifo"
    dlq, queue = stack["DeadLetterQueueUrl"], stack["QueueUrl"]
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": dlq_arn}},
        {"QueueUrl": dlq, "AttributeNames": ["QueueArn"]},
    )
    count = {
        "QueueUrl": dlq,
        "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }
    stubber.add_response("get_queue_attributes", {"Attributes": depth(3)}, count)
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": queue_arn}},
        {"QueueUrl": queue, "AttributeNames": ["QueueArn"]},
    )
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "task-1"},
        {"SourceArn": dlq_arn, "DestinationArn": queue_arn},
    )
    listing = {"SourceArn": dlq_arn, "MaxResults": 1}
    running = {
        "Status": "RUNNING",
        "TaskHandle": "task-1",
        "ApproximateNumberOfMessagesMoved": 1,
        "ApproximateNumberOfMessagesToMove": 3,
    }
    for _ in range(unlisted):
        stubber.add_response("list_message_move_tasks", {"Results": []}, listing)
    stubber.add_response("list_message_move_tasks", {"Results": [running]}, listing)
    stubber.add_response("list_message_move_tasks", {"Results": [final]}, listing)
    left = str(3 - final["ApproximateNumberOfMessagesMoved"])
    stubber.add_response("get_queue_attributes", {"Attributes": depth(int(left))}, count)
    stubber.activate()
    return stubber


def test_redrive_follows_the_move_task_and_reports_what_moved(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN the database alarm OK and a move task that runs, then completes WHEN `dlq redrive --output json`
    runs THEN it starts the task from the dead-letter queue to the source queue, shows progress on stderr,
    and reports 3 of 3 moved, none left."""
    completed = {
        "Status": "COMPLETED",
        "ApproximateNumberOfMessagesMoved": 3,
        "ApproximateNumberOfMessagesToMove": 3,
    }
    sqs = stubbed_move(stack, completed)

    code, out = run(
        "--stack",
        STACK,
        "--output",
        "json",
        "dlq",
        "redrive",
        session=Session(sqs=sqs.client, cloudformation=with_alarm()),
    )

    assert code == 0
    assert json.loads(out)["redrive"] == {
        "status": "COMPLETED",
        "moved": 3,
        "to_move": 3,
        "failure_reason": None,
        "left_in_dead_letter_queue": 0,
    }
    assert "moved 1 of 3" in capsys.readouterr().err
    sqs.assert_no_pending_responses()


def test_a_failed_move_task_is_an_error(stack: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN a move task that fails after one message WHEN `dlq redrive` follows it THEN it exits 1 with
    the task's failure reason."""
    failed = {
        "Status": "FAILED",
        "ApproximateNumberOfMessagesMoved": 1,
        "ApproximateNumberOfMessagesToMove": 3,
        "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
    }
    sqs = stubbed_move(stack, failed)

    code, _ = run(
        "--stack", STACK, "dlq", "redrive", session=Session(sqs=sqs.client, cloudformation=with_alarm())
    )

    assert code == 1
    assert "FAILED: AWS.SimpleQueueService.NonExistentQueue" in capsys.readouterr().err


def test_a_move_task_not_listed_yet_is_waited_for(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN ListMessageMoveTasks answering no task right after the task started WHEN `dlq redrive
    --output json` follows it THEN it says the task is not listed yet, keeps waiting, and reports the
    task once it is listed and completes."""
    completed = {
        "Status": "COMPLETED",
        "ApproximateNumberOfMessagesMoved": 3,
        "ApproximateNumberOfMessagesToMove": 3,
    }
    sqs = stubbed_move(stack, completed, unlisted=2)

    code, out = run(
        "--stack", STACK, "--output", "json", "dlq", "redrive",
        session=Session(sqs=sqs.client, cloudformation=with_alarm()),
    )  # fmt: skip

    assert code == 0
    assert json.loads(out)["redrive"]["status"] == "COMPLETED"
    assert "SQS lists no message move task from" in capsys.readouterr().err
    sqs.assert_no_pending_responses()


def test_a_move_task_never_listed_ends_in_a_clear_error(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN ListMessageMoveTasks answering no task at all WHEN `dlq redrive --timeout 0` follows the task
    THEN it exits 1 with one line saying what it gave up waiting for (no traceback)."""
    sqs = boto3.client("sqs", region_name=REGION)
    stubber = Stubber(sqs)
    dlq_arn = "arn:aws:sqs:eu-west-1:123456789012:customers-dlq.fifo"
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": dlq_arn}})
    stubber.add_response("get_queue_attributes", {"Attributes": depth(1)})
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": dlq_arn.replace("-dlq", "")}})
    stubber.add_response("start_message_move_task", {"TaskHandle": "task-1"})
    stubber.add_response("list_message_move_tasks", {"Results": []})
    stubber.activate()

    code, _ = run(
        "--stack", STACK, "--timeout", "-1", "dlq", "redrive",
        session=Session(sqs=sqs, cloudformation=with_alarm()),
    )  # fmt: skip

    assert code == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith("error: gave up waiting for the message move task")
    )


def test_the_redrive_guard_finds_the_alarm_beyond_the_first_hundred_resources(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a stack of more than 100 resources (as the SAM transform makes it) whose DatabaseUnavailable
    alarm is listed on the second page of ListStackResources, in ALARM WHEN `dlq redrive` runs THEN it
    is refused naming the alarm, AND the dead letter stays where it is."""
    dead_letter(stack, "alice", "req-a")
    cloudformation = with_alarm(pages=2)
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="test"
    )

    code, _ = run("--stack", STACK, "dlq", "redrive", session=Session(cloudformation=cloudformation))

    assert code == 1
    assert ALARM in capsys.readouterr().err
    assert visible(stack["DeadLetterQueueUrl"]) == 1


def metric_alarm(name: str, state: str) -> dict[str, Any]:
    """A MetricAlarm of DescribeAlarms."""
    return {"AlarmName": name, "StateValue": state, "StateReason": f"{name} is {state}"}


def test_the_upgrade_guard_reads_every_page_of_alarms(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a stack of 61 alarms, DescribeAlarms answering them in two pages, the one in ALARM on the
    second WHEN an upgrade is asked for THEN it is refused, naming that alarm."""
    more = {f"Alarm{n:02}": ("AWS::CloudWatch::Alarm", f"alarm-{n:02}") for n in range(60)}
    names = sorted([ALARM, *(physical_id for _, physical_id in more.values())])
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    stubber = Stubber(cloudwatch)
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": [metric_alarm(name, "OK") for name in names[:50]], "NextToken": "next"},
        {"AlarmNames": names},
    )
    stubber.add_response(
        "describe_alarms",
        {
            "MetricAlarms": [
                metric_alarm(name, "ALARM" if name == "alarm-59" else "OK") for name in names[50:]
            ]
        },
        {"AlarmNames": names, "NextToken": "next"},
    )
    stubber.activate()

    code, _ = run(
        "--stack", STACK, "upgrade", "--engine-version", "8.0.mysql_aurora.3.09.0", "--yes",
        session=Session(cloudwatch=cloudwatch, cloudformation=with_alarm(**more)),
    )  # fmt: skip

    assert code == 1
    assert "alarms are firing (alarm-59)" in capsys.readouterr().err
    stubber.assert_no_pending_responses()


# ---- clear errors ---------------------------------------------------------------------------------------


def test_an_unknown_stack_is_named_with_the_region(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN no such stack in the region WHEN status runs THEN exit 1 naming the stack and the region."""
    code, _ = run("--stack", "nope", "status")

    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: stack nope not found in region {REGION}: check --stack and --region"
    )


def test_missing_credentials_are_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN no AWS credentials anywhere WHEN status runs THEN exit 1 telling how to get some."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    code = main(["--region", REGION, "--stack", STACK, "status"], out=io.StringIO())

    assert code == 1
    assert "no AWS credentials" in capsys.readouterr().err


def test_a_command_that_needs_the_stack_says_so(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("dlq", "peek")

    assert code == 1
    assert "--stack NAME is required" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN each subcommand WHEN called with --help THEN it prints its usage and exits 0."""
    for command in (
        ["status"],
        ["dlq", "peek"],
        ["dlq", "redrive"],
        ["failover"],
        ["reboot-writer"],
        ["upgrade"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        assert exit_.value.code == 0
        assert f"python -m ops {' '.join(command)}" in capsys.readouterr().out


# ---- the database: failover, upgrade (RDS answers from a Stubber) ------------------------------------


def cluster_answers(
    stubber: Stubber, status: str, writer: str, version: str = "8.0.mysql_aurora.3.08.0"
) -> None:
    """DescribeDBClusters and DescribeDBInstances of a two-instance cluster whose writer is `writer`."""
    members = [
        {"DBInstanceIdentifier": name, "IsClusterWriter": name == writer}
        for name in ("ingest-db-1", "ingest-db-2")
    ]
    stubber.add_response(
        "describe_db_clusters",
        {
            "DBClusters": [
                {
                    "DBClusterIdentifier": CLUSTER,
                    "DBClusterArn": f"arn:aws:rds:{REGION}:123456789012:cluster:{CLUSTER}",
                    "Status": status,
                    "Engine": "aurora-mysql",
                    "EngineVersion": version,
                    "DBClusterMembers": members,
                }
            ]
        },
        {"DBClusterIdentifier": CLUSTER},
    )
    for name, zone in (("ingest-db-1", "eu-west-1a"), ("ingest-db-2", "eu-west-1b")):
        instance = {"DBInstanceIdentifier": name, "AvailabilityZone": zone, "DBInstanceStatus": "available"}
        stubber.add_response(
            "describe_db_instances", {"DBInstances": [instance]}, {"DBInstanceIdentifier": name}
        )


def upgrade_targets_answer(stubber: Stubber, target: str, major: bool = False) -> None:
    """DescribeDBEngineVersions of the cluster's version (3.08.0), listing `target` as its only upgrade."""
    stubber.add_response(
        "describe_db_engine_versions",
        {
            "DBEngineVersions": [
                {
                    "EngineVersion": "8.0.mysql_aurora.3.08.0",
                    "ValidUpgradeTarget": [{"EngineVersion": target, "IsMajorVersionUpgrade": major}],
                }
            ]
        },
        {"Engine": "aurora-mysql", "EngineVersion": "8.0.mysql_aurora.3.08.0"},
    )


def event_answers(stubber: Stubber, *messages: str) -> None:
    """DescribeEvents for the cluster (with `messages`) and its two instances (none)."""
    events = [
        {
            "SourceIdentifier": CLUSTER,
            "Message": message,
            "Date": datetime(2026, 11, 30, 12, 0, n, tzinfo=UTC),
        }
        for n, message in enumerate(messages)
    ]
    stubber.add_response("describe_events", {"Events": events})
    stubber.add_response("describe_events", {"Events": []})
    stubber.add_response("describe_events", {"Events": []})


def test_failover_follows_the_events_and_reports_the_outage(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a cluster whose writer is ingest-db-1 and a consumer that reported the database unavailable
    for one minute WHEN `failover --yes --output json` runs THEN it fails the cluster over, prints the RDS
    events while it waits, and reports the new writer, 60 s of writes unavailable and the drained queue."""
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)
    cluster_answers(stubber, "available", "ingest-db-1")  # before
    cluster_answers(stubber, "available", "ingest-db-1")  # the failover's check for a reader
    stubber.add_response("failover_db_cluster", {"DBCluster": {}}, {"DBClusterIdentifier": CLUSTER})
    cluster_answers(stubber, "failing-over", "ingest-db-1")
    event_answers(stubber, "Started cross AZ failover to DB instance: ingest-db-2")
    cluster_answers(stubber, "available", "ingest-db-2")
    event_answers(stubber, "Started cross AZ failover to DB instance: ingest-db-2", "Completed failover")
    event_answers(stubber, "Started cross AZ failover to DB instance: ingest-db-2", "Completed failover")
    stubber.activate()
    within_one_minute()
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace="CustomerIngest",
        MetricData=[
            {
                "MetricName": "DatabaseUnavailable",
                "Dimensions": [{"Name": "service", "Value": "customer-ingest"}],
                "Value": 4,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )

    code, out = run(
        "--stack", STACK, "--output", "json", "failover", "--yes",
        session=Session(rds=rds, cloudformation=with_alarm()),
    )  # fmt: skip

    assert code == 0
    outage = json.loads(out)["outage"]
    assert (outage["old_writer"], outage["new_writer"]) == ("ingest-db-1", "ingest-db-2")
    assert outage["writes_unavailable_s"] == 60.0
    assert outage["backlog_drained_s"] is not None
    assert [event["message"] for event in outage["events"]] == [
        "Started cross AZ failover to DB instance: ingest-db-2",
        "Completed failover",
    ]
    assert "Completed failover" in capsys.readouterr().err, "the events are shown while it waits"
    stubber.assert_no_pending_responses()


def test_failover_without_a_terminal_asks_for_yes(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN no terminal to confirm on (a script) WHEN failover runs without --yes THEN nothing fails over."""
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)  # no FailoverDBCluster answer: calling it would fail the test
    stubber.activate()

    code, _ = run("--stack", STACK, "failover", session=Session(rds=rds))

    assert code == 1
    assert "pass --yes" in capsys.readouterr().err


def test_upgrade_is_refused_while_an_alarm_fires(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN DatabaseUnavailable in ALARM WHEN an upgrade is asked for THEN it is refused, naming it."""
    cloudformation = with_alarm()
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="test"
    )

    code, _ = run(
        "--stack", STACK, "upgrade", "--engine-version", "8.0.mysql_aurora.3.09.0", "--yes",
        session=Session(cloudformation=cloudformation),
    )  # fmt: skip

    assert code == 1
    assert f"alarms are firing ({ALARM})" in capsys.readouterr().err


def test_upgrade_is_refused_with_a_backlog(stack: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN more queued records than --max-backlog WHEN an upgrade is asked for THEN it is refused."""
    sqs = boto3.client("sqs", region_name=REGION)
    for number in range(3):
        sqs.send_message(
            QueueUrl=stack["QueueUrl"],
            MessageBody="{}",
            MessageGroupId="g",
            MessageDeduplicationId=str(number),
        )

    code, _ = run("--stack", STACK, "upgrade", "--engine-version", "x", "--max-backlog", "2", "--yes")

    assert code == 1
    assert "the queue holds 3 records" in capsys.readouterr().err


def test_upgrade_to_a_version_that_is_no_target_is_refused(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN RDS lists 3.09.0 as the only upgrade target WHEN 3.99.0 is asked for THEN it is refused,
    listing the valid targets, and nothing is modified."""
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)
    cluster_answers(stubber, "available", "ingest-db-1")
    upgrade_targets_answer(stubber, "8.0.mysql_aurora.3.09.0")
    stubber.activate()

    code, _ = run(
        "--stack", STACK, "upgrade", "--engine-version", "8.0.mysql_aurora.3.99.0", "--yes",
        session=Session(rds=rds),
    )  # fmt: skip

    assert code == 1
    assert "(valid: 8.0.mysql_aurora.3.09.0)" in capsys.readouterr().err
    stubber.assert_no_pending_responses()


def test_a_minor_upgrade_is_applied_in_place_and_followed(stack: dict[str, str]) -> None:
    """GIVEN a valid minor target WHEN `upgrade --yes` runs THEN the cluster is modified in place to it
    (applied now), followed until available, and the outage reported."""
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)
    cluster_answers(stubber, "available", "ingest-db-1")
    upgrade_targets_answer(stubber, "8.0.mysql_aurora.3.09.0")
    cluster_answers(stubber, "available", "ingest-db-1")  # before
    stubber.add_response(
        "modify_db_cluster",
        {"DBCluster": {}},
        {
            "DBClusterIdentifier": CLUSTER,
            "EngineVersion": "8.0.mysql_aurora.3.09.0",
            "ApplyImmediately": True,
        },
    )
    cluster_answers(stubber, "upgrading", "ingest-db-1")
    event_answers(stubber, "Database cluster engine version upgrade started.")
    cluster_answers(stubber, "available", "ingest-db-1", version="8.0.mysql_aurora.3.09.0")
    event_answers(stubber, "Database cluster engine version upgrade finished.")
    event_answers(stubber, "Database cluster engine version upgrade finished.")
    stubber.activate()

    code, out = run(
        "--stack", STACK, "--output", "json",
        "upgrade", "--engine-version", "8.0.mysql_aurora.3.09.0", "--yes",
        session=Session(rds=rds),
    )  # fmt: skip

    assert code == 0
    result = json.loads(out)
    assert result["upgrade"] == {
        "current_version": "8.0.mysql_aurora.3.08.0",
        "target_version": "8.0.mysql_aurora.3.09.0",
        "major": False,
    }
    assert result["outage"]["operation"] == "upgrade"
    stubber.assert_no_pending_responses()


def test_status_shows_the_writer_and_reader_with_their_zones(stack: dict[str, str]) -> None:
    """GIVEN a two-instance cluster WHEN `status --output json` runs THEN it shows the outputs, the queue
    depths, no alarm firing, the writer and the reader with their Availability Zones, and the RDS events."""
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)
    cluster_answers(stubber, "available", "ingest-db-2")
    cluster_answers(stubber, "available", "ingest-db-2")  # the event timeline without a log group
    event_answers(stubber, "DB instance restarted")
    stubber.activate()
    dead_letter(stack, "alice", "req-a")

    code, out = run("--stack", STACK, "--output", "json", "status", session=Session(rds=rds))

    assert code == 0
    status = json.loads(out)
    assert status["outputs"]["DatabaseClusterId"] == CLUSTER
    assert status["alarms_in_alarm"] == []
    assert (status["queue"]["visible"], status["queue"]["dead_lettered"]) == (0, 1)
    assert [(m["instance_id"], m["role"], m["availability_zone"]) for m in status["database"]["members"]] == [
        ("ingest-db-1", "reader", "eu-west-1a"),
        ("ingest-db-2", "writer", "eu-west-1b"),
    ]
    assert [event["message"] for event in status["last_rds_events"]] == ["DB instance restarted"]


def test_a_major_upgrade_goes_through_a_blue_green_deployment(stack: dict[str, str]) -> None:
    """GIVEN a target RDS marks as a major version upgrade WHEN `upgrade --yes` runs THEN a blue/green
    deployment of the cluster on that version is created, waited for until the green cluster is
    available, switched over, and followed to SWITCHOVER_COMPLETED."""
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)
    target = "9.0.mysql_aurora.4.00.0"
    cluster_answers(stubber, "available", "ingest-db-1")
    upgrade_targets_answer(stubber, target, major=True)
    stubber.add_response(
        "create_blue_green_deployment",
        {"BlueGreenDeployment": {"BlueGreenDeploymentIdentifier": "bgd-1"}},
        {
            "BlueGreenDeploymentName": f"{CLUSTER}-9-0-mysql-aurora-4-00-0",
            "Source": f"arn:aws:rds:{REGION}:123456789012:cluster:{CLUSTER}",
            "TargetEngineVersion": target,
        },
    )
    deployment = {"BlueGreenDeploymentIdentifier": "bgd-1"}
    for state in ("PROVISIONING", "AVAILABLE"):
        stubber.add_response(
            "describe_blue_green_deployments",
            {"BlueGreenDeployments": [deployment | {"Status": state}]},
            {"BlueGreenDeploymentIdentifier": "bgd-1"},
        )
    cluster_answers(stubber, "available", "ingest-db-1")  # before the switchover
    stubber.add_response(
        "switchover_blue_green_deployment",
        {"BlueGreenDeployment": deployment},
        {"BlueGreenDeploymentIdentifier": "bgd-1"},
    )
    cluster_answers(stubber, "available", "ingest-db-1", version=target)
    event_answers(stubber, "Blue/green deployment switchover completed.")
    event_answers(stubber, "Blue/green deployment switchover completed.")
    stubber.add_response(
        "describe_blue_green_deployments",
        {"BlueGreenDeployments": [deployment | {"Status": "SWITCHOVER_COMPLETED"}]},
    )
    stubber.activate()

    code, out = run(
        "--stack", STACK, "--output", "json",
        "upgrade", "--engine-version", target, "--yes",
        session=Session(rds=rds),
    )  # fmt: skip

    assert code == 0
    result = json.loads(out)
    assert (result["upgrade"]["major"], result["blue_green_deployment"]) == (True, "bgd-1")
    assert result["outage"]["operation"] == "blue/green switchover"
    stubber.assert_no_pending_responses()


def test_status_reads_the_rds_event_timeline_from_the_stacks_log_group(stack: dict[str, str]) -> None:
    """GIVEN the stack's RdsEventsLogGroup holding RDS events as EventBridge delivers them WHEN status runs
    THEN the last events come from that log group, with their source and message."""
    logs = boto3.client("logs", region_name=REGION)
    group = "/customer-ingest-test/rds-events"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="events")
    detail = {"SourceIdentifier": "ingest-db-1", "Message": "Multi-AZ failover completed"}
    logs.put_log_events(
        logGroupName=group,
        logStreamName="events",
        logEvents=[
            {
                "timestamp": int(datetime.now(UTC).timestamp() * 1000),
                "message": json.dumps({"source": "aws.rds", "detail": detail}),
            }
        ],
    )
    rds = boto3.client("rds", region_name=REGION)
    stubber = Stubber(rds)
    cluster_answers(stubber, "available", "ingest-db-1")
    stubber.activate()

    code, out = run(
        "--stack", STACK, "--output", "json", "status",
        session=Session(rds=rds, cloudformation=with_alarm(RdsEventsLogGroup=("AWS::Logs::LogGroup", group))),
    )  # fmt: skip

    assert code == 0
    events = json.loads(out)["last_rds_events"]
    assert [(event["source"], event["message"]) for event in events] == [
        ("ingest-db-1", "Multi-AZ failover completed")
    ]


def rds_event_in_log(second: int, message: str) -> dict[str, Any]:
    """An RDS event as EventBridge delivers it to the RDS events log group, at 12:00:`second`."""
    at = datetime(2026, 11, 30, 12, 0, second, tzinfo=UTC)
    detail = {"SourceIdentifier": CLUSTER, "Message": message}
    return {"timestamp": int(at.timestamp() * 1000), "message": json.dumps({"detail": detail})}


def test_status_shows_the_newest_rds_events_of_every_log_page(stack: dict[str, str]) -> None:
    """GIVEN FilterLogEvents answering the RDS events log group in three pages (10 events, an empty page
    with a nextToken, 2 newer events) WHEN status runs THEN the last 10 events shown end with the newest
    two of the last page."""
    group = "/customer-ingest-test/rds-events"
    logs = boto3.client("logs", region_name=REGION)
    stubber = Stubber(logs)
    asked = {"logGroupName": group, "startTime": ANY}
    older = [rds_event_in_log(n, f"event {n}") for n in range(10)]
    stubber.add_response("filter_log_events", {"events": older, "nextToken": "t1"}, asked)
    stubber.add_response("filter_log_events", {"events": [], "nextToken": "t2"}, asked | {"nextToken": "t1"})
    newer = [rds_event_in_log(n, f"event {n}") for n in (10, 11)]
    stubber.add_response("filter_log_events", {"events": newer}, asked | {"nextToken": "t2"})
    stubber.activate()
    rds = boto3.client("rds", region_name=REGION)
    rds_stubber = Stubber(rds)
    cluster_answers(rds_stubber, "available", "ingest-db-1")
    rds_stubber.activate()
    cloudformation = with_alarm(RdsEventsLogGroup=("AWS::Logs::LogGroup", group))

    code, out = run(
        "--stack", STACK, "--output", "json", "status",
        session=Session(rds=rds, logs=logs, cloudformation=cloudformation),
    )  # fmt: skip

    assert code == 0
    shown = [event["message"] for event in json.loads(out)["last_rds_events"]]
    assert shown == [f"event {n}" for n in range(2, 12)]
    stubber.assert_no_pending_responses()


class Unreachable:
    """A client whose endpoint does not resolve, as with a misspelt --region."""

    def describe_stacks(self, **_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://cloudformation.eu-wset-1.amazonaws.com/")


def test_a_region_that_does_not_exist_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--region", "eu-wset-1", "--stack", STACK, "status"],
        out=io.StringIO(),
        session=Session(cloudformation=Unreachable()),
    )

    assert code == 1
    assert "is --region a real region?" in capsys.readouterr().err
