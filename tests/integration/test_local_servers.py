"""The child-process lifecycle the local servers share, and the SQS emulator and moto's server on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from local.servers import SqsEmulator, free_port, sqs_client
from local.servers.moto_server import moto_server
from local.servers.process import ServerProcess


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_server_that_exits_during_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    # GIVEN a server that prints an error and exits at once
    server = ServerProcess("broken", tmp_path / "broken.log")

    # WHEN it is started
    with pytest.raises(RuntimeError, match=r"broken exited during start-up") as raised:
        server.start(python("print('cannot bind'); raise SystemExit(1)"), lambda: False, timeout=10)

    # THEN the error carries the end of its log, and nothing is left running
    assert "cannot bind" in str(raised.value)
    assert not server.is_running()


def test_a_server_never_ready_is_killed_when_the_start_up_times_out(tmp_path: Path) -> None:
    # GIVEN a server that runs but never becomes ready
    server = ServerProcess("slow", tmp_path / "slow.log")

    # WHEN the start-up time runs out
    with pytest.raises(TimeoutError, match=r"slow was not ready within 0\.5s"):
        server.start(python("import time; time.sleep(60)"), lambda: False, timeout=0.5)

    # THEN it is not left behind
    assert not server.is_running()


def test_stop_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    # GIVEN a running server that ignores SIGTERM
    ready = tmp_path / "ready"
    server = ServerProcess("stubborn", tmp_path / "stubborn.log")
    code = (
        "import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    server.start(python(code), ready.exists, timeout=10)
    process = server.popen
    assert server.is_running()

    # WHEN it is stopped with a short grace period
    server.stop(timeout=0.5)

    # THEN it was killed: SIGKILL after SIGTERM went unanswered
    assert process.returncode == -9
    assert not server.is_running()


def test_the_emulator_restarted_on_its_data_answers_on_its_new_port(tmp_path: Path) -> None:
    # GIVEN an emulator on a port of its own choosing, holding a queue, then killed
    first = SqsEmulator(tmp_path / "sqs")
    first.start()
    sqs_client(first.endpoint).create_queue(QueueName="kept")
    first.kill()

    # WHEN another starts on the same data directory, on another port (the log already holds the
    # first one's announcement)
    port = next(port for port in iter(free_port, None) if f"http://127.0.0.1:{port}" != first.endpoint)
    second = SqsEmulator(tmp_path / "sqs", port)
    second.start()
    try:
        # THEN its endpoint is the one it announced, and the queue is still there
        assert second.endpoint == f"http://127.0.0.1:{port}"
        urls = sqs_client(second.endpoint).list_queues()["QueueUrls"]
        assert [url.rsplit("/", 1)[1] for url in urls] == ["kept"]
    finally:
        second.stop()
    assert not second.is_running()


def test_motos_server_serves_secrets_manager_until_stopped(tmp_path: Path) -> None:
    # GIVEN moto's server started as a child process on a free port
    with moto_server(tmp_path) as server:
        secrets = server.secrets_manager()
        # WHEN a secret is stored and read back over HTTP
        secrets.create_secret(Name="database", SecretString='{"host": "db.local"}')
        value = secrets.get_secret_value(SecretId="database")["SecretString"]
        # THEN it answers with what was stored
        assert value == '{"host": "db.local"}'
        assert server.process.is_running()
    # AND once the block is left, nothing is left running
    assert not server.process.is_running()
