"""Retry delays: the backlog resumes soon after any outage, and an hour of one stays within
maxReceiveCount (promise 6). The schedule is the template's; an hour is modelled, not waited for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from ingest.config import ConfigurationError, ConsumerSettings, DatabaseSettings, RetrySettings
from ingest.connection import Database
from ingest.consumer import Consumer
from local.servers import free_port
from local.template import Template
from local.testdata import queue_message

TEMPLATE = Template()
RETRY = RetrySettings.from_env(
    TEMPLATE.function_variables("ConsumerFunction", "RETRY_BASE_SECONDS", "RETRY_MAX_SECONDS")
)
MAX_RECEIVE_COUNT = TEMPLATE.max_receive_count("CustomerQueue")
POISON_RECEIVE_COUNT = TEMPLATE.shared_values().poison_receive_count
# The first commit after the database's return, at the latest (docs/design.md, promise 6).
RECOVERY_TARGET_S = 30
# How long a batch takes to fail while the database is down: refused at once (the local stack, a
# stopped instance behind HAProxy), or RDS Proxy's ConnectionBorrowTimeout (10 s in the template).
ATTEMPT_S = (0.0, 10.0)
HOUR_S = 3600


@dataclass(frozen=True)
class Waited:
    receives: int  # receives the message used, the successful one included
    stored_at: float | None  # None: still waiting at the horizon


def wait_through(
    outages: Sequence[tuple[float, float]], arrives_at: float, attempt_s: float, horizon_s: float
) -> Waited:
    """One message, received by the consumer whenever it is visible, while the database comes and goes.

    A model of SQS and the event source mapping: the poller receives the message as soon as it is
    visible (long polling); a receive while the database is down (an outage is [start, end)) fails
    after attempt_s and hides the message for the consumer's delay on its receive count; a receive
    while it is up stores it. Pessimistic: an attempt that began in an outage fails even if the
    database returns meanwhile (RDS Proxy would hand it the connection).
    """
    now, receives = arrives_at, 0
    while now < horizon_s:
        receives += 1
        if not any(start <= now < end for start, end in outages):
            return Waited(receives, now)
        now += attempt_s + RETRY.delay_after(receives)
    return Waited(receives, None)


def test_delays_double_from_the_base_up_to_a_small_cap():
    assert [RETRY.delay_after(count) for count in range(1, 7)] == [5, 10, 15, 15, 15, 15]
    assert RETRY.delay_after(MAX_RECEIVE_COUNT) == 15


@pytest.mark.parametrize("attempt_s", ATTEMPT_S)
@pytest.mark.parametrize("outage_s", [45, 300, HOUR_S])
def test_after_an_outage_of_any_length_the_backlog_resumes_within_the_target(outage_s, attempt_s):
    # GIVEN messages sent at every second of the outage's first minute (every phase of the backoff)
    outage = (0.0, float(outage_s))

    # WHEN the database is down for 45 s, 5 minutes or an hour, then back
    waited = [wait_through([outage], float(sent), attempt_s, outage_s + 600) for sent in range(60)]

    # THEN each is stored within the target of the database's return: at most the cap plus one attempt
    resumed_after = [w.stored_at - outage_s for w in waited if w.stored_at is not None]
    assert len(resumed_after) == len(waited)
    assert max(resumed_after) <= RETRY.max_seconds + attempt_s <= RECOVERY_TARGET_S
    # AND none came near the receive that would move it to the dead-letter queue
    assert max(w.receives for w in waited) < MAX_RECEIVE_COUNT


def test_an_hour_long_outage_fails_241_receives_of_the_budget_at_most():
    # GIVEN a message sent as the database goes away, and failed attempts that take no time (the most
    # receives an outage can cost)
    # WHEN the database stays away for an hour
    waited = wait_through([(0.0, HOUR_S)], 0.0, 0.0, HOUR_S + 60)

    # THEN it failed at 0, 5, 15, 30, ... 3,585 s (241 receives) and was stored on the next, at 3,600 s,
    # far from maxReceiveCount
    assert waited == Waited(receives=242, stored_at=HOUR_S)
    assert waited.receives < MAX_RECEIVE_COUNT / 4


def test_the_budget_lasts_four_hours_of_outage_before_sqs_dead_letters():
    # GIVEN failed attempts that take no time
    # WHEN the database never comes back
    waited = wait_through([(0.0, 10 * HOUR_S)], 0.0, 0.0, 4 * HOUR_S)

    # THEN after four hours the message has still not used its receives
    assert waited.stored_at is None
    assert waited.receives < MAX_RECEIVE_COUNT


@pytest.mark.parametrize("attempt_s", ATTEMPT_S)
def test_repeated_short_outages_each_resume_within_the_target_and_spend_little_budget(attempt_s):
    # GIVEN an hour of 45 s outages with a minute of database between them (a flapping upgrade), and a
    # message sent at every 5th second of it
    outages = [(start, start + 45.0) for start in range(0, HOUR_S, 105)]

    # WHEN each waits for the database
    for sent in range(0, HOUR_S, 5):
        waited = wait_through(outages, float(sent), attempt_s, HOUR_S + 600)

        # THEN it is stored within the target of the end of the outage it was sent in (at once if
        # the database was up), with a handful of receives
        assert waited.stored_at is not None
        outage_end = next((end for start, end in outages if start <= sent < end), float(sent))
        assert waited.stored_at - outage_end <= RECOVERY_TARGET_S, (sent, waited)
        assert waited.receives <= 6


def test_a_flapping_database_for_an_hour_never_exhausts_the_budget():
    # GIVEN a database down 20 s and up 2 s, over and over for an hour, and failed attempts that take
    # no time; the message is never stored only if every receive lands in a down window
    outages = [(start, start + 20.0) for start in range(0, HOUR_S, 22)]

    # WHEN a message waits through it from the start
    waited = wait_through(outages, 0.0, 0.0, HOUR_S)

    # THEN whatever became of it, it used fewer receives than maxReceiveCount
    assert waited.receives < MAX_RECEIVE_COUNT


def test_the_poison_limit_is_far_below_the_outage_budget():
    # A record the database refuses leaves after POISON_RECEIVE_COUNT receives of 5 s each (promise 5);
    # an outage needs MAX_RECEIVE_COUNT to be large. The two are separate settings for that reason.
    assert POISON_RECEIVE_COUNT * RETRY.base_seconds <= 180
    assert POISON_RECEIVE_COUNT < wait_through([(0.0, HOUR_S)], 0.0, 0.0, HOUR_S).receives < MAX_RECEIVE_COUNT


@pytest.mark.parametrize(
    "env",
    [
        {"RETRY_BASE_SECONDS": "0"},
        {"RETRY_BASE_SECONDS": "x"},
        {"RETRY_BASE_SECONDS": "600", "RETRY_MAX_SECONDS": "60"},
    ],
)
def test_bad_retry_settings_are_refused_at_start(env):
    with pytest.raises(ConfigurationError):
        RetrySettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_USER": "u", "DB_NAME": "d"}, "DB_HOST"),
        ({"DB_HOST": "h", "DB_USER": "u"}, "DB_NAME"),
        ({"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u", "DB_AUTH": "kerberos"}, "DB_AUTH"),
        (
            {"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u", "DB_TLS": "maybe", "AWS_REGION": "eu-west-1"},
            "DB_TLS",
        ),
        ({"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u"}, "AWS_REGION"),
    ],
)
def test_database_settings_name_what_is_wrong(env, message):
    with pytest.raises(ConfigurationError, match=message):
        DatabaseSettings.from_env(env)


def test_settings_never_print_the_password():
    settings = DatabaseSettings.from_env(
        {"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u", "DB_AUTH": "password", "DB_PASSWORD": "s3cr3t-value"}
    )
    assert "s3cr3t-value" not in repr(settings)


@mock_aws
def test_with_the_database_down_failed_records_are_hidden_for_the_backoff_delay():
    # GIVEN a FIFO queue holding two records of two customers, received once and once more
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    dead_letter_url = sqs.create_queue(QueueName="dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for customer in ("a", "b"):
        body = json.dumps(queue_message(customer, 1_764_000_000_000_000))
        sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId=customer, MessageDeduplicationId=customer
        )
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)  # first receive: visibility 0, back at once
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    records = [
        SQSRecord(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
            }
        )
        for m in received
    ]
    assert {record.attributes.approximate_receive_count for record in records} == {"2"}

    # AND a consumer whose database does not answer
    settings = ConsumerSettings.from_env(
        {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(free_port()),
            "DB_NAME": "ingest",
            "DB_USER": "u",
            "DB_AUTH": "password",
            "DB_TLS": "off",
            "DB_CONNECT_TIMEOUT": "1",
            "QUEUE_URL": url,
            "DEAD_LETTER_QUEUE_URL": dead_letter_url,
            "POISON_RECEIVE_COUNT": str(POISON_RECEIVE_COUNT),
        }
    )
    consumer = Consumer(Database(settings.database), settings, sqs, sqs_call_s=0)  # no deadline

    # WHEN it processes the batch
    outcome = consumer.process(records)

    # THEN both failed for the database and are hidden (the queue's own timeout of 0 would show them)
    assert outcome.database_unavailable
    assert set(outcome.failed) == {record.message_id for record in records}
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
