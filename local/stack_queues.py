"""The local stack's queues: CustomerQueue and its dead-letter queue as template.yaml declares them.

They are created on the SQS emulator the stack starts (local.servers.sqs_emulator), or on the
endpoint INGEST_SQS_ENDPOINT names instead (ElasticMQ, LocalStack); the queue outage drill then
needs the emulator, since it kills the server.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from local.servers import sqs_client
from local.template import Template

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

EXTERNAL_ENDPOINT_VARIABLE = "INGEST_SQS_ENDPOINT"


@dataclass(frozen=True)
class Queues:
    endpoint: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    max_receive_count: int


def create_queues(
    endpoint: str,
    template: Template,
    visibility_timeout: int | None = None,
) -> Queues:
    """CustomerDeadLetterQueue and CustomerQueue as template.yaml declares them (redrive included).

    The override exists for the drill, to keep it short: a short `visibility_timeout` so messages of
    a killed consumer come back within seconds.
    """
    client = sqs_client(endpoint, retries=3)
    dead_letter = template.queue("CustomerDeadLetterQueue")
    dead_letter_url = client.create_queue(QueueName=dead_letter.name, Attributes=dead_letter.attributes)[
        "QueueUrl"
    ]
    dead_letter_arn = _queue_arn(client, dead_letter_url)

    queue = template.queue("CustomerQueue")
    receives = template.max_receive_count("CustomerQueue")
    attributes = dict(queue.attributes)
    if visibility_timeout is not None:
        attributes["VisibilityTimeout"] = str(visibility_timeout)
    attributes["RedrivePolicy"] = json.dumps(
        {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": receives}
    )
    queue_url = client.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
    # CreateQueue on an existing queue keeps its attributes on some endpoints: set them explicitly.
    client.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": attributes["RedrivePolicy"]})
    return Queues(
        endpoint=endpoint,
        queue_url=queue_url,
        queue_arn=_queue_arn(client, queue_url),
        dead_letter_url=dead_letter_url,
        max_receive_count=receives,
    )


def _queue_arn(client: SQSClient, url: str) -> str:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def external_endpoint() -> str | None:
    return os.environ.get(EXTERNAL_ENDPOINT_VARIABLE) or None
