"""A database that takes the connection and then says nothing costs the read timeout, not the function's;
and the consumer's database work, whatever its timeouts, ends before the invocation must answer."""

from __future__ import annotations

import socket
import time

import pytest

from ingest.clients import worst_case_s as sqs_call_worst_case_s
from ingest.config import ConsumerSettings, DatabaseSettings
from ingest.connection import Database, DatabaseUnavailable
from ingest.consumer import VISIBILITY_BATCH_SIZE, attempt_worst_case_s
from ingest.retry import Deadline
from local.template import Template
from tests.conftest import load_handler

SILENT_SERVER_ENV = {
    "DB_HOST": "127.0.0.1",
    "DB_NAME": "ingest",
    "DB_USER": "ingest_reader",
    "DB_AUTH": "password",
    "DB_TLS": "off",
}


def test_a_server_that_never_answers_is_given_up_after_the_read_timeout():
    # GIVEN a server that accepts TCP connections and never sends MySQL's greeting (a stalled proxy)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        env = SILENT_SERVER_ENV | {
            "DB_PORT": str(silent.getsockname()[1]),
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


def test_a_deadline_cuts_a_connection_attempt_whatever_the_read_timeout():
    # GIVEN a server that accepts TCP connections and never answers, and a read timeout of 10 s
    with socket.create_server(("127.0.0.1", 0)) as silent:
        env = SILENT_SERVER_ENV | {"DB_PORT": str(silent.getsockname()[1]), "DB_READ_TIMEOUT": "10"}
        database = Database(DatabaseSettings.from_env(env))
        # WHEN a connection is asked for with half a second left before a deadline
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            database.connection(Deadline.after(0.5))
        waited_s = time.monotonic() - started
    # THEN it is given up at the deadline, not after the read timeout
    assert 0.5 <= waited_s < 1.5


def test_one_attempt_of_a_consumer_batch_and_its_retry_delays_fit_in_the_consumer_timeout(monkeypatch):
    # GIVEN the consumer as template.yaml configures it (what only AWS knows filled in)
    template = Template()
    function = template.document["Resources"]["ConsumerFunction"]["Properties"]
    literal = {
        name: value for name, value in function["Environment"]["Variables"].items() if isinstance(value, str)
    }
    aws = {
        "DB_HOST": "proxy.example",
        "DB_USER": "ingest_app",
        "DB_NAME": template.shared_values().database_name,
        "AWS_REGION": "us-east-1",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/customers.fifo",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/customers-dlq.fifo",
        "POISON_RECEIVE_COUNT": str(template.shared_values().poison_receive_count),
    }
    settings = ConsumerSettings.from_env(literal | aws)
    consumer = load_handler("consumer", monkeypatch, literal | aws)
    timeout_s = template.function_timeout("ConsumerFunction")
    batch_size = function["Events"]["CustomerQueueBatches"]["Properties"]["BatchSize"]

    # WHEN a database attempt takes just under its timeouts at every step (idle ping, connect,
    # handshake, BEGIN, the two statements, COMMIT) and each SQS call uses all its attempts
    attempt_s = attempt_worst_case_s(settings)
    sqs_call_s = sqs_call_worst_case_s(consumer.consumer.sqs.meta.config.retries["total_max_attempts"])

    # THEN the batch's retry delays (one call for a whole batch) are set after that attempt, and the
    # consumer still has its margin to answer before the function's timeout
    assert sqs_call_s <= consumer.SQS_CALL_S == consumer.consumer.sqs_call_s
    assert batch_size <= VISIBILITY_BATCH_SIZE
    assert attempt_s + consumer.SQS_CALL_S + consumer.ANSWER_MARGIN_S <= timeout_s
