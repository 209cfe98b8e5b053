"""End-to-end tests: the local stack on real servers (MariaDB, HAProxy, the SQS emulator)."""

import shutil
from typing import Any

import pytest

from local.servers import free_port
from local.stack import StackOptions


@pytest.fixture(scope="session", autouse=True)
def servers_installed() -> None:
    missing = [name for name in ("mariadbd", "mariadb-install-db", "haproxy") if not _installed(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: run local/ensure-packages.sh (apt-get install -y "
            "mariadb-server-core haproxy)"
        )


def _installed(name: str) -> bool:
    return bool(shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin"))


def options_on_free_ports(**settings: Any) -> StackOptions:
    """Ports nobody uses right now, so the tests run next to a `make demo` or another test run."""
    ports: set[int] = set()
    while len(ports) < 5:
        ports.add(free_port())
    proxy, writer, replica, sqs, api = sorted(ports)
    return StackOptions(
        proxy_port=proxy, writer_port=writer, replica_port=replica, sqs_port=sqs, api_port=api, **settings
    )


@pytest.fixture
def stack_options() -> StackOptions:
    return options_on_free_ports()
