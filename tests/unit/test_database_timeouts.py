"""A database that takes the connection and then says nothing costs the read timeout, not the function's."""

from __future__ import annotations

import socket
import time

import pytest

from ingest.config import DatabaseSettings
from ingest.connection import Database, DatabaseUnavailable


def test_a_server_that_never_answers_is_given_up_after_the_read_timeout():
    # GIVEN a server that accepts TCP connections and never sends MySQL's greeting (a stalled proxy)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        env = {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(silent.getsockname()[1]),
            "DB_NAME": "ingest",
            "DB_USER": "ingest_reader",
            "DB_AUTH": "password",
            "DB_TLS": "off",
            "DB_CONNECT_TIMEOUT": "5",
            "DB_READ_TIMEOUT": "0.5",
        }
        database = Database(DatabaseSettings.from_env(env))
        # WHEN a connection is asked for
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            database.connection()
        waited_s = time.monotonic() - started
    # THEN it is given up after DB_READ_TIMEOUT (the TCP connect itself succeeded at once)
    assert 0.5 <= waited_s < 2


def test_the_read_timeout_defaults_to_ten_seconds():
    settings = DatabaseSettings.from_env(
        {"DB_HOST": "proxy.example", "DB_NAME": "ingest", "DB_USER": "u", "AWS_REGION": "us-east-1"}
    )
    assert settings.read_timeout == 10.0
