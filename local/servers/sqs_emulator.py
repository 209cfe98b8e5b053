"""The project's SQS emulator (local.sqs) as the tests, the benchmarks and the local stack run it.

As a child process (`python -m local.sqs`, durable in SQLite, so a SIGKILL loses nothing it
acknowledged, as with SQS), or in-process on the same data directory, plus the boto3 client that
talks to it (or to any local SQS endpoint).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from local.servers.process import ServerProcess, ensure_port_free
from local.sqs import QueueStore
from local.template import LOCAL_REGION, REPO_ROOT

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

# What `python -m local.sqs --data DIR` keeps in DIR, and the line it prints once it listens.
DATA_FILE = "sqs.sqlite3"
ANNOUNCEMENT = re.compile(rb"local SQS listening on (http://\S+)")
# Local endpoints ignore credentials, but botocore insists on having some to sign with.
DUMMY_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def sqs_client(endpoint: str, timeout: float = 5, retries: int = 0) -> SQSClient:
    """A boto3 SQS client for a local endpoint; no retries by default, so an outage shows at once."""
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout + 25,  # room for a 20 s long poll
        retries={"max_attempts": retries + 1, "mode": "standard"},
    )
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=LOCAL_REGION,
        config=config,
        aws_access_key_id=DUMMY_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=DUMMY_CREDENTIALS["aws_secret_access_key"],
    )


def emulator_store(datadir: Path) -> QueueStore:
    """The emulator's store in this process, on the data directory a child process would use."""
    return QueueStore(str(Path(datadir) / DATA_FILE))


class SqsEmulator:
    """`python -m local.sqs` as a child process; kill and start again to stage a queue outage."""

    host = "127.0.0.1"

    def __init__(self, datadir: Path, port: int = 0) -> None:
        """`port` 0 lets the emulator pick a free port itself; `endpoint` says which once started."""
        self.port = port
        self.datadir = Path(datadir)
        self.process = ServerProcess("the SQS emulator", self.datadir / "sqs.log")
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        if self._endpoint is None:
            raise RuntimeError("the SQS emulator has not started")
        return self._endpoint

    def start(self, timeout: float = 15) -> None:
        if self.port:
            ensure_port_free(self.port, "the SQS emulator")
        self.datadir.mkdir(parents=True, exist_ok=True)
        # The log grows across restarts: only what this start writes can announce it.
        log_offset = self.process.log_path.stat().st_size if self.process.log_path.exists() else 0
        command = [
            sys.executable,
            "-m",
            "local.sqs",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data",
            str(self.datadir),
        ]
        self.process.start(command, lambda: self._announced(log_offset), timeout, cwd=REPO_ROOT)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def is_running(self) -> bool:
        return self.process.is_running()

    def _announced(self, log_offset: int) -> bool:
        """True once the emulator printed its endpoint: it listens from then on."""
        with open(self.process.log_path, "rb") as log:
            log.seek(log_offset)
            found = ANNOUNCEMENT.search(log.read())
        if found is None:
            return False
        self._endpoint = found.group(1).decode()
        return True
