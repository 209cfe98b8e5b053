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
The paths take turns in short rounds (each round starting with the next of the three fast ones, the
naive one last), so drift hits all of them alike; each rate is the median over the rounds, each ratio
the median of the round-by-round ratios of the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

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

DATABASE = "bench_write"
SECRET_NAME = "customer-ingest/database"  # noqa: S105 - the secret's name, not its value
# The records INSERT alone: what the one-INSERT ceiling and the naive path run.
INSERT = "INSERT INTO customer_records (request_id, customer_id, payload, accepted_at) VALUES "
ROW = "(%s, %s, %s, %s)"


def _row(message: dict[str, Any]) -> tuple:
    return record_row(
        message["request_id"], message["customer_id"], message["payload"], message["accepted_at"]
    )


def run_consumer(handler: Handler, events: list[dict[str, Any]], devnull: TextIO) -> float:
    context = LambdaContext(function_name="ConsumerFunction")
    rows = sum(len(event["Records"]) for event in events)
    with contextlib.redirect_stdout(devnull):
        started = time.perf_counter()
        for event in events:
            reply = handler(event, context)
            if reply["batchItemFailures"]:
                raise RuntimeError(f"consumer failed records: {reply['batchItemFailures'][:3]}")
        elapsed = time.perf_counter() - started
    return rows / elapsed


def run_invariant_ceiling(server: DatabaseEndpoint, events: list[dict]) -> float:
    """What the consumer's promises require per SQS event, in plain pymysql: decode each body, then one
    transaction with the records INSERT and the profile upsert, the repository's statements."""
    rows = sum(len(event["Records"]) for event in events)
    with server.connect(DATABASE, autocommit=False) as connection:
        started = time.perf_counter()
        for event in events:
            messages = [json.loads(record["body"]) for record in event["Records"]]
            batch = [_row(message) for message in messages]
            connection.begin()
            with connection.cursor() as cursor:
                cursor.execute(records_insert(len(batch)), [v for row in batch for v in row])
                cursor.execute(profiles_upsert(len(messages)), [m["request_id"] for m in messages])
            connection.commit()
        elapsed = time.perf_counter() - started
    return rows / elapsed


def run_ceiling(server: DatabaseEndpoint, events: list[dict]) -> float:
    """A reference floor under the promises: decode each body, one multi-row INSERT per event, COMMIT."""
    rows = sum(len(event["Records"]) for event in events)
    with server.connect(DATABASE, autocommit=False) as connection:
        started = time.perf_counter()
        for event in events:
            batch = [_row(json.loads(record["body"])) for record in event["Records"]]
            connection.begin()
            with connection.cursor() as cursor:
                cursor.execute(INSERT + ", ".join([ROW] * len(batch)), [v for row in batch for v in row])
            connection.commit()
        elapsed = time.perf_counter() - started
    return rows / elapsed


def run_naive(secrets: Any, ca: Path, events: list[dict]) -> float:
    """The reference guidance's handler, per record: the secret, a new verified TLS connection, one
    INSERT, COMMIT, close. Its Secrets Manager client is made once, at import, as the guidance does."""
    rows = sum(len(event["Records"]) for event in events)
    started = time.perf_counter()
    for event in events:
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
    return rows / (time.perf_counter() - started)


def _store_secret(secrets: Any, server: DatabaseEndpoint) -> None:
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
        "MAX_RECEIVE_COUNT": str(shared_values().max_receive_count),
    }
    env = LAMBDA_ENV | server.env(DATABASE) | queues | {"POWERTOOLS_TRACE_DISABLED": "true"}
    os.environ.update(env)  # the handler reads its settings at import, as in Lambda
    with contextlib.redirect_stdout(DEVNULL):
        consumer = load_function_module("consumer")
    run_consumer(consumer.handler, sqs_events(queue_messages(50, seed=999)), DEVNULL)
    with consumer.consumer.database.connection().cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        version = cursor.fetchone()[1]
    if not version.startswith("TLS"):
        raise RuntimeError(f"the consumer's connection is not encrypted: {version!r}")
    return consumer


def run(quick: bool = False) -> dict:
    # Many short rounds rather than a few long runs: on a shared machine a stall (another process's
    # fsyncs) then hits a round or two of every path instead of one path's whole run, and the ratios
    # are taken round by round, between runs a fraction of a second apart.
    rounds = 3 if quick else 20
    rows, naive_rows = (100, 30) if quick else (250, 50)  # per path and round
    fast = ("consumer", "invariant_ceiling", "ceiling")
    paths = (*fast, "naive")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-write-")))
        server, certificates = stack.enter_context(tls_database(workdir))
        secrets = stack.enter_context(moto_server(workdir)).secrets_manager()
        progress(f"write path: MariaDB (TLS only) on port {server.port}; {rounds} rounds")
        _store_secret(secrets, server)
        consumer = load_consumer(server)
        # Warm-up of the other paths (imports, the Secrets Manager client's first call).
        run_invariant_ceiling(server, sqs_events(queue_messages(50, seed=998)))
        run_naive(secrets, certificates.ca, sqs_events(queue_messages(10, seed=997)))
        runs = {
            "consumer": lambda seed: run_consumer(
                consumer.handler, sqs_events(queue_messages(rows, seed=seed)), DEVNULL
            ),
            "invariant_ceiling": lambda seed: run_invariant_ceiling(
                server, sqs_events(queue_messages(rows, seed=seed))
            ),
            "ceiling": lambda seed: run_ceiling(server, sqs_events(queue_messages(rows, seed=seed))),
            "naive": lambda seed: run_naive(
                secrets, certificates.ca, sqs_events(queue_messages(naive_rows, seed=seed))
            ),
        }
        results: dict[str, list[float]] = {path: [] for path in paths}
        for round_ in range(rounds):
            truncate(server, DATABASE)
            # Each round starts with the next path, so that whatever a run leaves the server doing
            # (purge, page flushing) does not always fall on the same path; the naive path, seconds
            # long, comes last so as not to part the others.
            order = (*fast[round_ % len(fast) :], *fast[: round_ % len(fast)], "naive")
            for index, path in enumerate(order):
                before = count_records(server, DATABASE)
                results[path].append(runs[path](100 * round_ + index))  # distinct request ids
                if path == "consumer" and (stored := count_records(server, DATABASE) - before) != rows:
                    raise RuntimeError(f"consumer stored {stored} of {rows} records")
            progress(
                f"  round {round_ + 1}/{rounds}: "
                + ", ".join(f"{path} {results[path][-1]:,.0f}" for path in paths)
                + " rows/s"
            )
        consumer.consumer.database.discard()
    rate = {path: median(results[path]) for path in paths}

    def ratio(other: str) -> float:
        pairs = zip(results["consumer"], results[other], strict=True)
        return median([ours / theirs for ours, theirs in pairs])

    return {
        "consumer_rows_per_s": round(rate["consumer"], 1),
        "invariant_ceiling_rows_per_s": round(rate["invariant_ceiling"], 1),
        "consumer_vs_invariant_ceiling": round(ratio("invariant_ceiling"), 3),
        "ceiling_rows_per_s": round(rate["ceiling"], 1),
        "consumer_vs_ceiling": round(ratio("ceiling"), 3),
        "naive_rows_per_s": round(rate["naive"], 1),
        "consumer_vs_naive": round(ratio("naive"), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
