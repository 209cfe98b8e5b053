"""Retry delays: short outages recover fast, an hour-long one stays within maxReceiveCount (promise 6)."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from moto import mock_aws

from ingest.config import ConfigurationError, ConsumerSettings, DatabaseSettings, RetrySettings
from ingest.connection import Database
from ingest.consumer import Consumer
from local.servers import free_port
from local.testdata import queue_message

MAX_RECEIVE_COUNT = 25  # template.yaml's RedrivePolicy; test_template checks the template says so


def test_delays_double_from_the_base_up_to_the_cap():
    retry = RetrySettings.from_env({})
    assert [retry.delay_after(count) for count in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_an_hour_long_outage_uses_fewer_receives_than_max_receive_count():
    # GIVEN the default delays, and a consumer that receives a waiting message at the end of each delay
    retry = RetrySettings.from_env({})
    waited, receives = 0, 0

    # WHEN the database stays away for an hour
    while waited < 3600:
        receives += 1
        waited += retry.delay_after(receives)

    # THEN the message is still short of the dead-letter queue
    assert receives < MAX_RECEIVE_COUNT, receives


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
            "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        }
    )
    consumer = Consumer(Database(settings.database), settings, sqs)

    # WHEN it processes the batch
    outcome = consumer.process(records)

    # THEN both failed for the database and are hidden (the queue's own timeout of 0 would show them)
    assert outcome.database_unavailable
    assert set(outcome.failed) == {record.message_id for record in records}
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
