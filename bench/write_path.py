"""The write path: our consumer against what its promises require of any consumer, and the naive one.

All of them write the same realistic records (100 customers) into the same throwaway MariaDB, which
accepts TLS connections only (a certificate made at start, verified by every client, as RDS Proxy's
is in AWS):
- consumer: functions/consumer/app.py's handler, in-process, SQS events of 10 records each (parse,
  validate, one transaction with the records INSERT and the profile upsert, Powertools logging and
  metrics, the partial batch response), on its one kept connection;
- invariant ceiling: plain pymysql doing the same database work per event, and nothing else: decode
  the bodies, BEGIN, the records INSERT and the profile upsert (ingest.repository's own statements),
  COMMIT. The consumer cannot do less without breaking a promise (all of a batch or none of it, the
  profile kept current in the same transaction);
- ceiling (a reference figure): one multi-row INSERT into customer_records per event, the profile left
  out, so below what the promises require;
- naive: the reference guidance's write path: per message the database secret from Secrets Manager
  (moto's server over HTTP, in a child process), a new verified TLS connection, one INSERT, commit,
  close.
The paths take turns (each turn 25 SQS events of 10 records per fast path, 5 per naive run; the
first path to go moving on by one each turn). Each rate is the median of the path's per-turn rates,
each ratio the median of the consumer's rate over the other path's in the same turn: a stall of the
shared machine (another process's fsyncs) spoils a few turns, which the medians leave out, instead
of one path's total.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pymysql

from bench.common import (
    DEVNULL,
    LAMBDA_ENV,
    QUEUE_URL,
    count_records,
    create_database,
    median,
    progress,
    queue_messages,
    sqs_events,
    truncate,
)
from ingest.repository import profiles_upsert, record_row, records_insert
from local.lambda_runtime import Handler, LambdaContext, load_function_module
from local.servers import DatabaseEndpoint, throwaway_mariadb
from local.servers.moto_server import moto_server
from local.servers.tls import ServerCertificates, make_certificates
from local.template import shared_values

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

DATABASE = "bench_write"
SECRET_NAME = "customer-ingest/database"  # noqa: S105 - the secret's name, not its value
# The records INSERT alone: what the one-INSERT ceiling and the naive path run.
INSERT = "INSERT INTO customer_records (request_id, customer_id, payload, accepted_at) VALUES "
ROW = "(%s, %s, %s, %s)"


def _row(message: dict[str, Any]) -> tuple:
    return record_row(
        message["request_id"], message["customer_id"], message["payload"], message["accepted_at"]
    )


# Writes the records of one SQS event, the way one of the compared paths does.
BatchWriter = Callable[[dict[str, Any]], None]


def consumer_writer(handler: Handler) -> BatchWriter:
    """The handler, invoked as Lambda invokes it; a reply with failed records stops the benchmark."""
    # One context for the whole measurement: the consumer's deadline is the invocation's remaining time.
    context = LambdaContext(function_name="ConsumerFunction", timeout_s=86_400)

    def write(event: dict[str, Any]) -> None:
        reply = handler(event, context)
        if reply["batchItemFailures"]:
            raise RuntimeError(f"consumer failed records: {reply['batchItemFailures'][:3]}")

    return write


def invariant_ceiling_writer(connection: pymysql.Connection) -> BatchWriter:
    """What the consumer's promises require per SQS event, in plain pymysql: decode each body, then one
    transaction with the records INSERT and the profile upsert, the repository's statements."""

    def write(event: dict[str, Any]) -> None:
        messages = [json.loads(record["body"]) for record in event["Records"]]
        batch = [_row(message) for message in messages]
        connection.begin()
        with connection.cursor() as cursor:
            cursor.execute(records_insert(len(batch)), [v for row in batch for v in row])
            cursor.execute(profiles_upsert(len(messages)), [m["request_id"] for m in messages])
        connection.commit()

    return write


def ceiling_writer(connection: pymysql.Connection) -> BatchWriter:
    """A reference floor under the promises: decode each body, one multi-row INSERT per event, COMMIT."""

    def write(event: dict[str, Any]) -> None:
        batch = [_row(json.loads(record["body"])) for record in event["Records"]]
        connection.begin()
        with connection.cursor() as cursor:
            cursor.execute(INSERT + ", ".join([ROW] * len(batch)), [v for row in batch for v in row])
        connection.commit()

    return write


def naive_writer(secrets: SecretsManagerClient, ca: Path) -> BatchWriter:
    """The reference guidance's handler, per record: the secret, a new verified TLS connection, one
    INSERT, COMMIT, close. Its Secrets Manager client is made once, at import, as the guidance does."""

    def write(event: dict[str, Any]) -> None:
        for record in event["Records"]:
            body = json.loads(record["body"])
            secret = json.loads(secrets.get_secret_value(SecretId=SECRET_NAME)["SecretString"])
            connection = pymysql.connect(
                host=secret["host"],
                port=secret["port"],
                user=secret["username"],
                password=secret["password"],
                database=secret["dbname"],
                ssl={"ca": str(ca)},
                autocommit=False,
            )
            try:
                with connection.cursor() as cursor:
                    cursor.execute(INSERT + ROW, _row(body))
                connection.commit()
            finally:
                connection.close()

    return write


def run_consumer(handler: Handler, events: list[dict[str, Any]]) -> float:
    """The consumer alone over `events`: rows per second."""
    write = consumer_writer(handler)
    with contextlib.redirect_stdout(DEVNULL):
        started = time.perf_counter()
        for event in events:
            write(event)
        elapsed = time.perf_counter() - started
    return sum(len(event["Records"]) for event in events) / elapsed


def run_round(
    writers: dict[str, BatchWriter], turns: list[dict[str, list[dict[str, Any]]]]
) -> list[dict[str, float]]:
    """The paths take turns, each writing its SQS events of the turn (the first path to go moving on by
    one each turn); returns each path's rate (rows per second) in each turn.

    A turn's runs are milliseconds apart, so a stall of the shared machine falls on runs of every path
    alike; within its run each path writes several batches in a row, as a container does, warm.
    """
    names = list(writers)
    rates = []
    for index, turn in enumerate(turns):
        turn_rates = {}
        for name in names[index % len(names) :] + names[: index % len(names)]:
            if turn.get(name):
                started = time.perf_counter()
                for event in turn[name]:
                    writers[name](event)
                elapsed = time.perf_counter() - started
                turn_rates[name] = sum(len(event["Records"]) for event in turn[name]) / elapsed
        rates.append(turn_rates)
    return rates


def _store_secret(secrets: SecretsManagerClient, server: DatabaseEndpoint) -> None:
    # The shape of an RDS database secret.
    secret = {
        "engine": "mysql",
        "host": server.host,
        "port": server.port,
        "username": server.user,
        "password": server.password,
        "dbname": DATABASE,
    }
    secrets.create_secret(Name=SECRET_NAME, SecretString=json.dumps(secret))


@contextlib.contextmanager
def tls_database(workdir: Path) -> Iterator[tuple[DatabaseEndpoint, ServerCertificates]]:
    """A throwaway MariaDB that accepts TLS connections only, with the benchmark's empty database, and
    the certificates its clients verify it by."""
    certificates = make_certificates(workdir / "tls", hosts=("127.0.0.1",))
    with throwaway_mariadb("bench-mariadb", tls=certificates) as mariadb:
        create_database(mariadb.endpoint, DATABASE)
        yield mariadb.endpoint, certificates


def load_consumer(server: DatabaseEndpoint) -> ModuleType:
    """functions/consumer/app.py loaded as a fresh container would load it, its connection opened (TLS
    verified, checked) by a first batch."""
    # The queues are never called: every record commits on its first receive.
    queues = {
        "QUEUE_URL": QUEUE_URL,
        "DEAD_LETTER_QUEUE_URL": QUEUE_URL,
        "POISON_RECEIVE_COUNT": str(shared_values().poison_receive_count),
    }
    env = LAMBDA_ENV | server.env(DATABASE) | queues | {"POWERTOOLS_TRACE_DISABLED": "true"}
    os.environ.update(env)  # the handler reads its settings at import, as in Lambda
    with contextlib.redirect_stdout(DEVNULL):
        consumer = load_function_module("consumer")
    run_consumer(consumer.handler, sqs_events(queue_messages(50, seed=999)))
    with consumer.consumer.database.connection().cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        version = cursor.fetchone()[1]
    if not version.startswith("TLS"):
        raise RuntimeError(f"the consumer's connection is not encrypted: {version!r}")
    return consumer


def run(quick: bool = False) -> dict:
    rounds = 3 if quick else 10
    # Per round: turns, and in each turn SQS events of 10 records per fast path, and per naive run.
    turns, fast_events, naive_events = (2, 5, 1) if quick else (2, 25, 5)
    paths = ("consumer", "invariant_ceiling", "ceiling", "naive")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-write-")))
        server, certificates = stack.enter_context(tls_database(workdir))
        secrets = stack.enter_context(moto_server(workdir)).secrets_manager()
        progress(f"write path: MariaDB (TLS only) on port {server.port}; {rounds} rounds")
        _store_secret(secrets, server)
        consumer = load_consumer(server)
        writers = {
            "consumer": consumer_writer(consumer.handler),
            "invariant_ceiling": invariant_ceiling_writer(
                stack.enter_context(server.connect(DATABASE, autocommit=False))
            ),
            "ceiling": ceiling_writer(stack.enter_context(server.connect(DATABASE, autocommit=False))),
            "naive": naive_writer(secrets, certificates.ca),
        }
        # Warm-up of the other paths (imports, the Secrets Manager client's first call).
        for name in ("invariant_ceiling", "ceiling", "naive"):
            writers[name](sqs_events(queue_messages(10, seed=990 + len(name)))[0])
        rates: list[dict[str, float]] = []
        for round_ in range(rounds):
            truncate(server, DATABASE)
            seeds = iter(range(1000 * round_, 1000 * (round_ + 1)))
            plan = [
                {
                    path: sqs_events(
                        queue_messages(
                            10 * (naive_events if path == "naive" else fast_events), seed=next(seeds)
                        )
                    )
                    for path in paths
                }
                for _ in range(turns)
            ]
            with contextlib.redirect_stdout(DEVNULL):  # the consumer's logs and metrics
                round_rates = run_round(writers, plan)
            rates += round_rates
            expected = turns * 10 * (3 * fast_events + naive_events)
            if (stored := count_records(server, DATABASE)) != expected:
                raise RuntimeError(f"{stored} records stored in the round, not {expected}")
            progress(f"  round {round_ + 1}/{rounds}: {_rates(round_rates, paths)}")
        consumer.consumer.database.discard()
    return _figures(rates)


def _rate(turns: list[dict[str, float]], path: str) -> float:
    """A path's typical rate: the median of its turns' rates (a stall of the machine is an outlier)."""
    return median([turn[path] for turn in turns if path in turn])


def _ratio(turns: list[dict[str, float]], other: str) -> float:
    """The consumer's rate over `other`'s, turn by turn: the median."""
    return median([turn["consumer"] / turn[other] for turn in turns if other in turn])


def _rates(turns: list[dict[str, float]], paths: tuple[str, ...]) -> str:
    return ", ".join(f"{path} {_rate(turns, path):,.0f}" for path in paths) + " rows/s"


def _figures(turns: list[dict[str, float]]) -> dict[str, float]:
    return {
        "consumer_rows_per_s": round(_rate(turns, "consumer"), 1),
        "invariant_ceiling_rows_per_s": round(_rate(turns, "invariant_ceiling"), 1),
        "consumer_vs_invariant_ceiling": round(_ratio(turns, "invariant_ceiling"), 3),
        "ceiling_rows_per_s": round(_rate(turns, "ceiling"), 1),
        "consumer_vs_ceiling": round(_ratio(turns, "ceiling"), 3),
        "naive_rows_per_s": round(_rate(turns, "naive"), 1),
        "consumer_vs_naive": round(_ratio(turns, "naive"), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
