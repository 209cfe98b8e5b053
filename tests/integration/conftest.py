"""Fixtures of the integration tests that load the consumer handler."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws


@dataclass(frozen=True)
class ConsumerQueues:
    sqs: Any  # boto3's SQS client, inside moto's mock
    env: dict[str, str]  # the consumer's queue settings, as template.yaml gives them


@pytest.fixture
def consumer_queues() -> Iterator[ConsumerQueues]:
    """The consumer's FIFO queue and dead-letter queue in moto's SQS, and the variables naming them."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        fifo = {"FifoQueue": "true"}
        queue_url = sqs.create_queue(QueueName="customer-ingest.fifo", Attributes=fifo)["QueueUrl"]
        dead_letter_url = sqs.create_queue(QueueName="customer-ingest-dlq.fifo", Attributes=fifo)["QueueUrl"]
        yield ConsumerQueues(
            sqs=sqs,
            env={"QUEUE_URL": queue_url, "DEAD_LETTER_QUEUE_URL": dead_letter_url, "MAX_RECEIVE_COUNT": "25"},
        )
