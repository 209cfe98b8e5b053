"""Fixtures of the handler tests that feed whole events: the queues as template.yaml declares them (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.template import Template
from tests.conftest import received_once


@dataclass(frozen=True)
class Queues:
    sqs: Any  # boto3 SQS client, inside moto's mock
    queue_url: str
    dead_letter_url: str
    poison_receive_count: int

    @property
    def env(self) -> dict[str, str]:
        """What the template gives the producer and the consumer about the queues."""
        return {
            "QUEUE_URL": self.queue_url,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_url,
            "POISON_RECEIVE_COUNT": str(self.poison_receive_count),
        }

    def messages(self, url: str) -> list[dict[str, Any]]:
        """Every message waiting in the queue at `url`, received (and so hidden) once."""
        return received_once(self.sqs, url)


@pytest.fixture
def queues() -> Iterator[Queues]:
    """CustomerQueue and CustomerDeadLetterQueue with template.yaml's attributes, in moto's SQS; the handlers'
    boto3 clients are made inside the same mock when loaded within this fixture's lifetime."""
    template = Template()
    with mock_aws():
        sqs: Any = boto3.client("sqs", region_name="us-east-1")  # queue attributes come as plain strings
        urls = {}
        for logical_id in ("CustomerDeadLetterQueue", "CustomerQueue"):
            settings = template.queue(logical_id)
            urls[logical_id] = sqs.create_queue(QueueName=settings.name, Attributes=settings.attributes)[
                "QueueUrl"
            ]
        yield Queues(
            sqs=sqs,
            queue_url=urls["CustomerQueue"],
            dead_letter_url=urls["CustomerDeadLetterQueue"],
            poison_receive_count=template.shared_values().poison_receive_count,
        )
