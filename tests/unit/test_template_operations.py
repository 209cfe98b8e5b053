"""Operations in template.yaml: alarms that reach someone, the dashboard, RDS events, Aurora on purpose.

The template is read as the local stack reads it (local/template.py). The metrics of the alarms and
the dashboard are checked against the code and AWS in tests/integration/test_metrics_alarms.py.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

from local.template import TEMPLATE_PATH, Template
from tests.deployed_template import Concrete
from tests.template_checks import deploy_refused

TEMPLATE = Template()
DOCUMENT = TEMPLATE.document
RESOURCES: dict[str, Any] = DOCUMENT["Resources"]
SAMCONFIG = TEMPLATE_PATH.parent / "samconfig.toml"

# The runbook section of each alarm (docs/operations.md), and of the RDS events.
RUNBOOK_ANCHORS = {
    "DeadLetterQueueAlarm": "alarm-dead-letter-queue-not-empty",
    "DeadLetterOldestMessageAlarm": "alarm-dead-letter-oldest-message",
    "QueueAgeAlarm": "alarm-queue-oldest-message",
    "DatabaseUnavailableAlarm": "alarm-database-unavailable",
    "ConsumerErrorsAlarm": "alarm-consumer-errors",
    "ConsumerRecordsFailedAlarm": "alarm-consumer-records-failed",
    "ApiServerErrorsAlarm": "alarm-api-5xx",
    "ApiLatencyAlarm": "alarm-api-latency",
    "ProducerErrorsAlarm": "alarm-producer-errors",
    "ReaderErrorsAlarm": "alarm-reader-errors",
    "FunctionThrottlesAlarm": "alarm-function-throttles",
    "ProxyAvailabilityAlarm": "alarm-proxy-availability",
    "ProxyBorrowLatencyAlarm": "alarm-proxy-borrow-latency",
    "WriterCpuAlarm": "alarm-writer-cpu",
    "WriterMemoryAlarm": "alarm-writer-memory",
    "ReplicaLagAlarm": "alarm-replica-lag",
}

# The alarms whose threshold operators set (they differ by instance class, traffic and patience).
THRESHOLD_PARAMETERS = {
    "QueueAgeAlarm": "QueueAgeAlarmSeconds",
    "DeadLetterOldestMessageAlarm": "DeadLetterAgeAlarmSeconds",
    "ApiLatencyAlarm": "ApiLatencyAlarmMilliseconds",
    "ProxyBorrowLatencyAlarm": "ProxyBorrowLatencyAlarmMicroseconds",
    "WriterCpuAlarm": "WriterCpuAlarmPercent",
    "WriterMemoryAlarm": "WriterFreeableMemoryAlarmBytes",
    "ReplicaLagAlarm": "ReplicaLagAlarmMilliseconds",
}

# Where a notification goes: an existing topic when given, else the stack's own; nowhere without either.
TOPIC_IN_USE = {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}
NOTIFY = {"Fn::If": ["NotifyAlarms", [TOPIC_IN_USE], {"Ref": "AWS::NoValue"}]}


def alarms() -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in RESOURCES.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def strings(value: Any) -> Iterator[str]:
    """Every string inside a template value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def statements_for(policy: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [statement for statement in policy["Statement"] if statement["Principal"] == {"Service": service}]


def prod_overrides() -> dict[str, str]:
    config = tomllib.loads(SAMCONFIG.read_text())
    pairs = shlex.split(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    return dict(pair.split("=", 1) for pair in pairs)


# --- alarms that reach someone ------------------------------------------------------------------------


def test_no_topic_is_encrypted_with_an_aws_managed_key_that_cloudwatch_cannot_use():
    # GIVEN every SNS topic of the template
    topics = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::SNS::Topic"}
    assert set(topics) == {"AlarmTopic"}
    for name, topic in topics.items():
        # THEN none names an AWS-managed key (alias/aws/...), whose policy no alarm may use
        assert not any("alias/aws/" in text for text in strings(topic.get("KmsMasterKeyId", ""))), name
    # AND the alarm topic uses the stack's own key
    assert topics["AlarmTopic"]["KmsMasterKeyId"] == {"Fn::GetAtt": ["AlarmTopicKey", "Arn"]}


def test_the_topic_key_rotates_and_lets_cloudwatch_alarms_of_this_account_and_eventbridge_use_it():
    key = RESOURCES["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (cloudwatch,) = statements_for(key["KeyPolicy"], "cloudwatch.amazonaws.com")
    (events,) = statements_for(key["KeyPolicy"], "events.amazonaws.com")
    for statement in (cloudwatch, events):
        assert statement["Effect"] == "Allow"
        assert set(statement["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    # CloudWatch: only for alarms of this account
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(
        ":${AWS::AccountId}:alarm:*"
    )
    # EventBridge: no source condition, which its deliveries through SNS do not carry (the topic policy
    # scopes it to the stack's rule instead)
    assert "Condition" not in events


def test_the_topic_policy_lets_cloudwatch_and_the_rds_event_rule_publish_and_nothing_else():
    policy = RESOURCES["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    document = policy["PolicyDocument"]
    assert {statement["Principal"]["Service"] for statement in document["Statement"]} == {
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
    }
    for statement in document["Statement"]:
        assert (statement["Effect"], statement["Action"]) == ("Allow", "sns:Publish")
        assert statement["Resource"] == {"Ref": "AlarmTopic"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (events,) = statements_for(document, "events.amazonaws.com")
    assert events["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["RdsEventsToOperatorRule", "Arn"]
    }


def test_the_stack_makes_its_own_topic_only_for_an_address_and_no_existing_topic():
    conditions = DOCUMENT["Conditions"]
    assert conditions["CreateAlarmTopic"] == {
        "Fn::And": [{"Condition": "HasAlarmEmail"}, {"Fn::Not": [{"Condition": "HasAlarmTopicArn"}]}]
    }
    for name in ("AlarmTopic", "AlarmTopicKey", "AlarmTopicPolicy"):
        assert RESOURCES[name]["Condition"] == "CreateAlarmTopic", name
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == TOPIC_IN_USE


def test_every_alarm_notifies_the_topic_in_use_when_it_fires_and_when_it_clears():
    for name, alarm in alarms().items():
        assert alarm["AlarmActions"] == NOTIFY, name
        assert alarm["OKActions"] == NOTIFY, name


def test_every_alarm_description_links_its_runbook_section():
    assert set(alarms()) == set(RUNBOOK_ANCHORS)
    for name, alarm in alarms().items():
        links = re.findall(r"docs/operations\.md#([a-z0-9-]+)", alarm["AlarmDescription"])
        assert links == [RUNBOOK_ANCHORS[name]], name
        # It says what it means before where to read more.
        assert len(alarm["AlarmDescription"].split("Runbook:")[0].strip()) > 40, name


def test_thresholds_operators_differ_on_are_parameters():
    for name, parameter in THRESHOLD_PARAMETERS.items():
        assert alarms()[name]["Threshold"] == {"Ref": parameter}, name
        assert parameter in DOCUMENT["Parameters"]


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"DatabaseDeletionProtection": "true"}, True),
        ({"DatabaseDeletionProtection": "true", "AlarmEmail": "oncall@ops.invalid"}, False),
        (
            {
                "DatabaseDeletionProtection": "true",
                "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:pager",
            },
            False,
        ),
        ({"DatabaseDeletionProtection": "false"}, False),
    ],
)
def test_a_protected_deploy_that_would_notify_nobody_is_refused_with_what_to_set(overrides, refused):
    # WHEN CloudFormation checks the Rules of a deploy with these parameters
    descriptions = deploy_refused(**overrides)
    # THEN only a protected (production) deploy without an address or a topic is refused, saying what to set
    assert bool(descriptions) == refused
    for description in descriptions:
        assert "AlarmEmail" in description
        assert "AlarmTopicArn" in description


def test_the_prod_environment_says_where_alarms_go_and_fills_in_no_fake_address():
    text = SAMCONFIG.read_text()
    prod = text[text.index("[prod.deploy.parameters]") :]
    # GIVEN prod protects its data, so a deploy must name a destination
    assert prod_overrides()["DatabaseDeletionProtection"] == "true"
    # THEN a commented placeholder says what to add, and no address is made up
    assert re.search(r"^#.*AlarmEmail=.*AlarmTopicArn=", prod, re.MULTILINE), prod
    assert "AlarmEmail" not in prod_overrides()
    assert "example.com" not in text


def test_the_dashboard_url_and_the_event_log_are_outputs():
    outputs = DOCUMENT["Outputs"]
    url = outputs["CloudWatchDashboardUrl"]["Value"]["Fn::Sub"]
    assert url.endswith("#dashboards:name=${Dashboard}")
    assert outputs["RdsEventsLogGroupName"]["Value"] == {"Ref": "RdsEventsLogGroup"}


def test_the_dashboard_body_is_json_once_substituted():
    body, variables = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([A-Za-z0-9:._]+)\}", body))
    for name in names:
        assert (
            name in variables
            or name.split(".")[0] in RESOURCES
            or name in DOCUMENT["Parameters"]
            or (name.startswith("AWS::"))
        ), name
    document = json.loads(re.sub(r"\$\{[A-Za-z0-9:._]+\}", "x", body))
    assert {widget["type"] for widget in document["widgets"]} == {"metric", "log"}


# --- RDS events on record --------------------------------------------------------------------------


CLUSTER_AND_INSTANCES = [
    {"Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:cluster:${DatabaseCluster}"},
    {"Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:${WriterInstance}"},
    {"Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:${ReaderInstance}"},
]


@pytest.mark.parametrize("rule", ["RdsEventsRecordRule", "RdsEventsToOperatorRule"])
def test_the_rules_take_the_rds_events_of_this_cluster_its_instances_and_blue_green_deployments(rule):
    pattern = RESOURCES[rule]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.rds"]
    database, blue_green = pattern["$or"]
    assert database["detail-type"] == ["RDS DB Cluster Event", "RDS DB Instance Event"]
    assert database["resources"] == CLUSTER_AND_INSTANCES
    assert blue_green == {"detail-type": ["RDS Blue Green Deployment Event"]}
    assert "docs/operations.md#rds-events" in RESOURCES[rule]["Properties"]["Description"]


def test_every_event_is_kept_in_a_log_group_with_retention_that_eventbridge_may_write():
    record = RESOURCES["RdsEventsRecordRule"]["Properties"]
    assert "detail" not in record["EventPattern"]["$or"][0]  # every event, not some categories
    (target,) = record["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RdsEventsLogGroup", "Arn"]}
    log_group = RESOURCES["RdsEventsLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert log_group["LogGroupName"]["Fn::Sub"].startswith("/aws/events/")  # EventBridge's requirement
    # GIVEN the log group's resource policy, substituted as CloudFormation would
    policy_text = RESOURCES["RdsEventsLogGroupPolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"]
    policy = json.loads(re.sub(r"\$\{([A-Za-z0-9:._]+)\}", r"<\1>", policy_text))
    rule_arn = "arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/" + record["Name"][
        "Fn::Sub"
    ].replace("${AWS::StackName}", "<AWS::StackName>")
    group = "<RdsEventsLogGroup.Arn>"
    # WHEN EventBridge delivers as it does: the stream is created without aws:SourceArn in the request
    # context, the events are put with the rule's ARN as aws:SourceArn (docs/aws-behaviours.md)
    # THEN both are allowed, and another rule's events are not
    assert _allows(policy, "events.amazonaws.com", "logs:CreateLogStream", group, {})
    assert _allows(policy, "events.amazonaws.com", "logs:PutLogEvents", group, {"aws:SourceArn": rule_arn})
    other_rule = {"aws:SourceArn": rule_arn.replace("-rds-events-record", "-someone-elses-rule")}
    assert not _allows(policy, "events.amazonaws.com", "logs:PutLogEvents", group, other_rule)
    assert not _allows(policy, "events.amazonaws.com", "logs:PutLogEvents", group, {})
    assert RESOURCES["RdsEventsRecordRule"]["DependsOn"] == "RdsEventsLogGroupPolicy"


def _allows(
    policy: dict[str, Any], service: str, action: str, resource: str, context: dict[str, str]
) -> bool:
    """Whether an Allow statement of a resource policy grants `service` the call: principal, action,
    resource and the ArnEquals conditions (a condition on a key the request lacks does not match, as in
    IAM's evaluation). Only what this template's resource policies use."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or service not in statement["Principal"]["Service"]:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action not in actions or statement["Resource"] != resource:
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"ArnEquals"}, "a condition operator this check does not know"
        if all(context.get(key) == value for key, value in conditions.get("ArnEquals", {}).items()):
            return True
    return False


def test_failover_failure_restarts_maintenance_and_blue_green_events_reach_the_operator():
    rule = RESOURCES["RdsEventsToOperatorRule"]
    assert rule["Condition"] == "NotifyAlarms"
    database, _ = rule["Properties"]["EventPattern"]["$or"]
    assert set(database["detail"]["EventCategories"]) == {
        "failover",
        "failure",
        "availability",
        "maintenance",
        "security patching",
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == TOPIC_IN_USE


# --- Aurora operated on purpose ----------------------------------------------------------------------


INSTANCES = ("WriterInstance", "ReaderInstance")


def test_maintenance_and_backups_happen_in_the_windows_the_operator_chose():
    cluster = RESOURCES["DatabaseCluster"]["Properties"]
    assert cluster["PreferredMaintenanceWindow"] == {"Ref": "DatabaseMaintenanceWindow"}
    assert cluster["PreferredBackupWindow"] == {"Ref": "DatabaseBackupWindow"}
    for name in INSTANCES:
        instance = RESOURCES[name]["Properties"]
        assert instance["PreferredMaintenanceWindow"] == {"Ref": "DatabaseMaintenanceWindow"}, name
        assert instance["AutoMinorVersionUpgrade"] == {"Ref": "DatabaseAutoMinorVersionUpgrade"}, name
    # The default windows match their own patterns and do not overlap (RDS refuses overlapping ones).
    parameters = DOCUMENT["Parameters"]
    for name in ("DatabaseMaintenanceWindow", "DatabaseBackupWindow"):
        assert re.fullmatch(parameters[name]["AllowedPattern"], parameters[name]["Default"]), name
    backup_end = parameters["DatabaseBackupWindow"]["Default"].split("-")[1]
    maintenance_start = parameters["DatabaseMaintenanceWindow"]["Default"].split("-")[0].split(":", 1)[1]
    assert backup_end <= maintenance_start


def test_performance_insights_and_enhanced_monitoring_follow_their_parameters():
    for name in INSTANCES:
        instance = RESOURCES[name]["Properties"]
        assert instance["EnablePerformanceInsights"] == {"Fn::If": ["UsePerformanceInsights", True, False]}
        assert instance["MonitoringInterval"] == {"Ref": "DatabaseMonitoringIntervalSeconds"}
        assert instance["MonitoringRoleArn"] == {
            "Fn::If": [
                "UseEnhancedMonitoring",
                {"Fn::GetAtt": ["DatabaseMonitoringRole", "Arn"]},
                {"Ref": "AWS::NoValue"},
            ]
        }
    role = RESOURCES["DatabaseMonitoringRole"]
    assert role["Condition"] == "UseEnhancedMonitoring"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}


def test_the_cluster_requires_tls_and_logs_slow_queries():
    cluster = RESOURCES["DatabaseCluster"]["Properties"]
    assert cluster["DBClusterParameterGroupName"] == {"Ref": "DatabaseClusterParameterGroup"}
    group = RESOURCES["DatabaseClusterParameterGroup"]["Properties"]
    assert group["Parameters"]["require_secure_transport"] == "ON"
    assert group["Parameters"]["slow_query_log"] == "1"
    assert group["Parameters"]["log_output"] == "FILE"


def test_exported_logs_land_in_log_groups_the_stack_made_first_with_retention():
    cluster = RESOURCES["DatabaseCluster"]
    exports = cluster["Properties"]["EnableCloudwatchLogsExports"]
    assert set(exports) == {"error", "slowquery"}
    assert cluster["Properties"]["DBClusterIdentifier"] == {"Ref": "DatabaseClusterName"}
    log_groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]: name
        for name, r in RESOURCES.items()
        if r["Type"] == "AWS::Logs::LogGroup" and isinstance(r["Properties"].get("LogGroupName"), dict)
    }
    for export in exports:
        # The name RDS writes to: /aws/rds/cluster/<cluster identifier>/<log type>
        name = log_groups[f"/aws/rds/cluster/${{DatabaseClusterName}}/{export}"]
        assert RESOURCES[name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert name in cluster["DependsOn"], name
    # The identifier is lower case, as RDS stores it and names the log groups.
    pattern = DOCUMENT["Parameters"]["DatabaseClusterName"]["AllowedPattern"]
    assert re.fullmatch(pattern, DOCUMENT["Parameters"]["DatabaseClusterName"]["Default"])
    assert not re.fullmatch(pattern, "Customer-Ingest")


def _environment_overrides() -> dict[str, dict[str, str]]:
    config = tomllib.loads(SAMCONFIG.read_text())
    return {
        name: dict(
            pair.split("=", 1) for pair in shlex.split(section["deploy"]["parameters"]["parameter_overrides"])
        )
        for name, section in config.items()
        if isinstance(section, dict)
        and "parameter_overrides" in section.get("deploy", {}).get("parameters", {})
    }


@pytest.mark.parametrize("environment", sorted(_environment_overrides()))
def test_every_environment_pins_an_engine_version_and_the_parameter_group_family_follows_it(environment):
    """GIVEN an environment's parameters WHEN the cluster and its parameter group are rendered THEN the
    cluster asks for a pinned version (never RDS's current default, which may be another major version)
    and the parameter group's family is that version's: aurora-mysql8.0 for 8.0.mysql_aurora.3.x."""
    overrides = _environment_overrides()[environment]
    document = TEMPLATE.rendered(overrides)
    concrete = Concrete(document, overrides)
    version = concrete(document["Resources"]["DatabaseCluster"]["Properties"]["EngineVersion"])
    assert re.fullmatch(DOCUMENT["Parameters"]["DatabaseEngineVersion"]["AllowedPattern"], version)
    family = concrete(document["Resources"]["DatabaseClusterParameterGroup"]["Properties"]["Family"])
    assert family == "aurora-mysql" + ".".join(version.split(".")[:2]) == "aurora-mysql8.0"
    assert not re.fullmatch(DOCUMENT["Parameters"]["DatabaseEngineVersion"]["AllowedPattern"], "")


def test_prod_pins_the_engine_upgrades_on_purpose_and_watches_the_database_closely():
    prod = prod_overrides()
    assert re.fullmatch(
        DOCUMENT["Parameters"]["DatabaseEngineVersion"]["AllowedPattern"], prod["DatabaseEngineVersion"]
    )
    assert prod["DatabaseEngineVersion"]
    assert prod["DatabaseAutoMinorVersionUpgrade"] == "false"
    assert prod["DatabasePerformanceInsights"] == "true"
    assert int(prod["DatabaseMonitoringIntervalSeconds"]) > 0
    assert prod["DatabaseClusterName"] != DOCUMENT["Parameters"]["DatabaseClusterName"]["Default"]


# --- words that hold -----------------------------------------------------------------------------------


def _outage_budget_hours() -> float:
    """When SQS moves a message held through an outage: its receive after maxReceiveCount, each failed
    receive hidden for the consumer's backoff (RETRY_BASE_SECONDS doubling up to RETRY_MAX_SECONDS)."""
    receives = TEMPLATE.max_receive_count("CustomerQueue")
    backoff = TEMPLATE.function_variables("ConsumerFunction", "RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS")
    base, cap = int(backoff["RETRY_BASE_SECONDS"]), int(backoff["RETRY_MAX_SECONDS"])
    return sum(min(base * 2 ** (n - 1), cap) for n in range(1, receives)) / 3600


def _texts_about_the_dead_letter_queue() -> dict[str, str]:
    texts = {name: r.get("Properties", {}).get("AlarmDescription", "") for name, r in RESOURCES.items()}
    texts |= {f"output {name}": o["Description"] for name, o in DOCUMENT["Outputs"].items()}
    return {name: " ".join(text.split()) for name, text in texts.items() if "dead-letter queue" in text}


def test_what_the_alarms_and_outputs_say_of_the_dead_letter_queue_is_what_the_template_does():
    """GIVEN every alarm description and output that speaks of the dead-letter queue THEN each number of
    receives it names is the poison count or the queue's budget, each "about N hours" is the budget's
    length, and no minute figure is left from an earlier schedule."""
    poison = TEMPLATE.mapping_value("Shared", "Queue", "PoisonReceiveCount")
    budget = TEMPLATE.max_receive_count("CustomerQueue")
    texts = _texts_about_the_dead_letter_queue()
    assert len(texts) >= 4
    for name, text in texts.items():
        for count in re.findall(r"(\d[\d,]*) receives", text):
            assert int(count.replace(",", "")) in {poison, budget}, (name, text)
        for hours in re.findall(r"about (\d+) hours", text):
            assert int(hours) == round(_outage_budget_hours()), (name, text)
        assert not re.search(r"\d+ minutes|rejected \d+ times", text), (name, text)


def test_the_api_is_named_once_and_its_alarms_watch_that_name():
    """GIVEN the API's Name, the OpenAPI title API Gateway may take instead, and the ApiName dimension of
    the API alarms THEN they are one name."""
    name = RESOURCES["IngestApi"]["Properties"]["Name"]
    assert TEMPLATE.api_definition()["info"]["title"] == name
    for alarm in ("ApiServerErrorsAlarm", "ApiLatencyAlarm"):
        dimensions = RESOURCES[alarm]["Properties"]["Dimensions"]
        assert {"Name": "ApiName", "Value": name} in dimensions, alarm


def test_every_log_group_says_what_happens_to_it_and_the_one_with_customer_data_has_its_own_key():
    """GIVEN every log group THEN its deletion and replacement policies are stated, and the slow query
    log, which holds statement text with customer values, is encrypted with a key that only CloudWatch
    Logs may use, for that group only."""
    groups = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for name, group in groups.items():
        assert group.get("DeletionPolicy") == group.get("UpdateReplacePolicy") == "Delete", name
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    slow = groups["DatabaseSlowQueryLogGroup"]["Properties"]
    assert slow["KmsKeyId"] == {"Fn::GetAtt": ["DatabaseLogsKey", "Arn"]}
    key = RESOURCES["DatabaseLogsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    (_, logs) = key["KeyPolicy"]["Statement"]
    context = logs["Condition"]["StringEquals"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"]
    assert context.endswith(":log-group:" + slow["LogGroupName"]["Fn::Sub"])


def _regions_of_the_shipped_rds_roots() -> set[str]:
    bundle = (TEMPLATE_PATH.parent / "layers/shared/ingest/certs/amazon-rds-roots.pem").read_bytes()
    names = [cert.subject.rfc4514_string() for cert in x509.load_pem_x509_certificates(bundle)]
    # "CN=Amazon RDS eu-west-1 Root CA RSA2048 G1"; the Beta and Preview roots serve no customer region
    return {
        match[1] for name in names if (match := re.search(r"CN=Amazon RDS ([a-z]+-[a-z]+-\d) Root CA", name))
    }


def test_a_deploy_is_refused_in_a_region_whose_rds_root_the_layer_does_not_ship():
    """GIVEN the regions whose RDS root CA the layer ships (the migrator verifies Aurora's certificate
    against them) THEN the template's rule admits exactly those regions, so a region without its root is
    refused before anything is created, instead of a first create that fails its logins for minutes."""
    (assertion,) = DOCUMENT["Rules"]["RegionHasShippedDatabaseRoots"]["Assertions"]
    admitted, region = assertion["Assert"]["Fn::Contains"]
    assert region == {"Ref": "AWS::Region"}
    shipped = _regions_of_the_shipped_rds_roots()
    assert len(shipped) >= 20
    assert set(admitted) == shipped
    # WHEN a stack is deployed where no root is shipped THEN CloudFormation refuses it, naming the bundle
    alarms_go_somewhere = {"AlarmEmail": "oncall@ops.invalid"}
    (refusal,) = deploy_refused(**{"AWS::Region": "il-central-1"} | alarms_go_somewhere)
    assert "amazon-rds-roots.pem" in refusal
    assert deploy_refused(**{"AWS::Region": "eu-west-1"} | alarms_go_somewhere) == []
