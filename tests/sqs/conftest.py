"""Servers for the SQS suite: moto's server (the reference) and the emulator, both on free ports."""

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.servers import SqsEmulator, sqs_client
from local.servers.moto_server import moto_server
from local.template import REPO_ROOT as ROOT

__all__ = ["ROOT", "sqs_client", "start_emulator"]  # what the SQS tests import from here


def start_emulator(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m local.sqs` on a free port; returns the process and its endpoint."""
    emulator = SqsEmulator(data_dir)
    emulator.start()
    return emulator.process.popen, emulator.endpoint


@pytest.fixture(scope="session")
def emulator_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    emulator = SqsEmulator(tmp_path_factory.mktemp("sqs-data"))
    emulator.start()
    yield emulator.endpoint
    emulator.stop()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server.endpoint


@pytest.fixture(params=["moto", "emulator"])
def sqs(request: pytest.FixtureRequest) -> Any:
    """The same boto3 client code against each backend."""
    return sqs_client(request.getfixturevalue(f"{request.param}_endpoint"))


@pytest.fixture
def emulator_sqs(emulator_endpoint: str) -> Any:
    """For behaviour where moto departs from the SQS Developer Guide."""
    return sqs_client(emulator_endpoint)


@pytest.fixture
def queue_name() -> str:
    """A fresh name per test: the servers live for the whole session."""
    return f"q-{uuid.uuid4().hex[:12]}"


def create_fifo(sqs: Any, name: str, **attributes: Any) -> str:
    attributes = {"FifoQueue": "true", **{key: str(value) for key, value in attributes.items()}}
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes=attributes)["QueueUrl"]


def error_code(excinfo: pytest.ExceptionInfo[Any]) -> str:
    return excinfo.value.response["Error"]["Code"]
