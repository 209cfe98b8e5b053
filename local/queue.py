"""The queue side of the local stack: the project's SQS emulator as a child process, and the queues.

By default the stack runs `python -m local.sqs` (durable in SQLite, so a SIGKILL loses nothing it
acknowledged, as with SQS). INGEST_SQS_ENDPOINT points the stack at another SQS endpoint instead
(ElasticMQ, LocalStack); the queue outage drill then needs the emulator, since it kills the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from local.ports import ensure_port_free
from local.template import LOCAL_REGION, Template

EXTERNAL_ENDPOINT_VARIABLE = "INGEST_SQS_ENDPOINT"
# Local endpoints ignore credentials, but botocore insists on having some to sign with.
DUMMY_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def sqs_client(endpoint: str, timeout: float = 5, retries: int = 0):
    """A boto3 SQS client for the local endpoint; no retries by default, so an outage shows at once."""
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout + 25,  # room for a 20 s long poll
        retries={"max_attempts": retries + 1, "mode": "standard"},
    )
    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name=LOCAL_REGION, config=config, **DUMMY_CREDENTIALS
    )


class SqsEmulator:
    """`python -m local.sqs` as a child process; kill and start again to stage a queue outage."""

    host = "127.0.0.1"

    def __init__(self, port: int, datadir: Path):
        self.port = port
        self.datadir = Path(datadir)
        self.log_path = self.datadir / "sqs.log"
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15) -> None:
        ensure_port_free(self.port, "the SQS emulator")
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.sqs",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--data",
                str(self.datadir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        log.close()
        self._wait_until_answering(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_until_answering(self, timeout: float) -> None:
        client = sqs_client(self.endpoint, timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(f"the SQS emulator exited during start-up; see {self.log_path}")
            try:
                client.list_queues()
                return
            except Exception:
                time.sleep(0.1)
        raise TimeoutError(f"the SQS emulator did not answer on {self.endpoint} within {timeout}s")


@dataclass(frozen=True)
class Queues:
    endpoint: str
    queue_url: str
    queue_arn: str
    dead_letter_url: str
    dead_letter_arn: str
    max_receive_count: int


def create_queues(
    endpoint: str,
    template: Template,
    max_receive_count: int | None = None,
    visibility_timeout: int | None = None,
) -> Queues:
    """CustomerDeadLetterQueue and CustomerQueue as template.yaml declares them (redrive included).

    The overrides exist for the drill, to keep it short: a low `max_receive_count` for the poison
    scenario, a short `visibility_timeout` so messages of a killed consumer come back within seconds.
    """
    client = sqs_client(endpoint, retries=3)
    dead_letter = template.queue("CustomerDeadLetterQueue")
    dead_letter_url = client.create_queue(QueueName=dead_letter.name, Attributes=dead_letter.attributes)[
        "QueueUrl"
    ]
    dead_letter_arn = _queue_arn(client, dead_letter_url)

    queue = template.queue("CustomerQueue")
    receives = max_receive_count or template.max_receive_count("CustomerQueue")
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
        dead_letter_arn=dead_letter_arn,
        max_receive_count=receives,
    )


def _queue_arn(client, url: str) -> str:
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue_depth(client, url: str) -> tuple[int, int]:
    """(visible, in flight) messages, as SQS approximates them."""
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def external_endpoint() -> str | None:
    return os.environ.get(EXTERNAL_ENDPOINT_VARIABLE) or None
