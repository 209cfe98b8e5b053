"""moto's server (`python -m moto.server`) as a child process: AWS APIs on a local HTTP endpoint."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from local.servers.process import ServerProcess, free_port
from local.servers.sqs_emulator import DUMMY_CREDENTIALS
from local.template import LOCAL_REGION

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class MotoServer:
    host = "127.0.0.1"

    def __init__(self, workdir: Path) -> None:
        self.port = 0
        self.process = ServerProcess("moto server", Path(workdir) / "moto.log")

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "moto.server", "--host", self.host, "--port", str(self.port)]
        self.process.start(command, self._listens, timeout)

    def stop(self) -> None:
        self.process.stop()

    def secrets_manager(self) -> SecretsManagerClient:
        """A boto3 Secrets Manager client for this server."""
        return boto3.client(
            "secretsmanager",
            endpoint_url=self.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=DUMMY_CREDENTIALS["aws_secret_access_key"],
        )

    def _listens(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            return False
        return True


@contextmanager
def moto_server(workdir: Path) -> Iterator[MotoServer]:
    """moto's server on a free port, stopped afterwards."""
    server = MotoServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
