"""Servers for the SQS suite: moto's server (the reference) and the emulator, both on free ports."""

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[2]


def sqs_client(endpoint: str):
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def start_emulator(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """Start `python -m local.sqs` on a free port; returns the process and its endpoint."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local.sqs", "--port", "0", "--data", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None  # stdout=PIPE
    startup_line = process.stdout.readline()
    match = re.search(r"http://\S+", startup_line)
    if match is None:
        process.kill()
        raise RuntimeError(f"emulator did not start: {startup_line!r}")
    return process, match.group(0)


@pytest.fixture(scope="session")
def emulator_endpoint(tmp_path_factory) -> Iterator[str]:
    process, endpoint = start_emulator(tmp_path_factory.mktemp("sqs-data"))
    yield endpoint
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["moto", "emulator"])
def sqs(request):
    """The same boto3 client code against each backend."""
    return sqs_client(request.getfixturevalue(f"{request.param}_endpoint"))


@pytest.fixture
def emulator_sqs(emulator_endpoint):
    """For behaviour where moto departs from the SQS Developer Guide."""
    return sqs_client(emulator_endpoint)


@pytest.fixture
def queue_name() -> str:
    """A fresh name per test: the servers live for the whole session."""
    return f"q-{uuid.uuid4().hex[:12]}"
