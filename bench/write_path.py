"""The write path: our consumer against the least any durable consumer must do, and the naive one.

All three write the same realistic records (100 customers) into the same throwaway MariaDB:
- consumer: functions/consumer/app.py's handler, in-process, SQS events of 10 records each (parse,
  validate, one transaction with the records INSERT and the profile upsert, partial batch response);
- ceiling: plain pymysql, one transaction per 10 records: one multi-row INSERT into customer_records;
- naive: the reference guidance's write path: per message a new connection, one INSERT, commit, close.
Repetitions are interleaved (consumer, ceiling, naive, consumer, ...) so drift hits all three alike;
each figure is the median, the ratios are taken from those medians of the same run.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime
from typing import Any, TextIO

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
from local.lambda_runtime import Handler, LambdaContext, load_function_module
from local.servers import DatabaseEndpoint, throwaway_mariadb
from local.template import shared_values

DATABASE = "bench_write"
INSERT = "INSERT INTO customer_records (request_id, customer_id, payload, accepted_at) VALUES "
ROW = "(%s, %s, %s, %s)"


def _row(message: dict) -> tuple:
    import json

    seconds, micros = divmod(message["accepted_at"], 1_000_000)
    accepted = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros, tzinfo=None)
    payload = json.dumps(message["payload"], separators=(",", ":"), ensure_ascii=False)
    return (message["request_id"], message["customer_id"], payload, accepted)


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


def run_ceiling(server: DatabaseEndpoint, events: list[dict]) -> float:
    """The least a durable consumer does with the same SQS events: decode each body, one multi-row
    INSERT per event, COMMIT."""
    import json

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


def run_naive(server: DatabaseEndpoint, messages: list[dict]) -> float:
    import json

    started = time.perf_counter()
    for message in messages:
        body = json.loads(json.dumps(message))  # the reference parses each record's body
        connection = server.connect(DATABASE, autocommit=False)
        try:
            with connection.cursor() as cursor:
                cursor.execute(INSERT + ROW, _row(body))
            connection.commit()
        finally:
            connection.close()
    return len(messages) / (time.perf_counter() - started)


def run(quick: bool = False) -> dict:
    repetitions = 3 if quick else 5
    consumer_rows, naive_rows = (300, 100) if quick else (5_000, 1_000)
    with throwaway_mariadb("bench-mariadb") as mariadb:
        server = mariadb.endpoint
        devnull = DEVNULL
        progress(f"write path: MariaDB on port {server.port}; {repetitions} repetitions")
        create_database(server, DATABASE)
        # The queues are never called: every record commits on its first receive.
        queues = {
            "QUEUE_URL": QUEUE_URL,
            "DEAD_LETTER_QUEUE_URL": QUEUE_URL,
            "POISON_RECEIVE_COUNT": str(shared_values().poison_receive_count),
        }
        env = LAMBDA_ENV | server.env(DATABASE) | queues | {"POWERTOOLS_TRACE_DISABLED": "true"}
        os.environ.update(env)  # the handler reads its settings at import, as in Lambda
        with contextlib.redirect_stdout(devnull):
            consumer = load_function_module("consumer")
        warmup = queue_messages(50, seed=999)
        run_consumer(consumer.handler, sqs_events(warmup), devnull)  # opens the container's connection
        run_ceiling(server, sqs_events(queue_messages(50, seed=998)))
        results: dict[str, list[float]] = {"consumer": [], "ceiling": [], "naive": []}
        for repetition in range(repetitions):
            seed = 10 * repetition
            truncate(server, DATABASE)
            messages = queue_messages(consumer_rows, seed=seed + 1)
            events = sqs_events(messages)
            results["consumer"].append(run_consumer(consumer.handler, events, devnull))
            stored = count_records(server, DATABASE)
            if stored != consumer_rows:
                raise RuntimeError(f"consumer stored {stored} of {consumer_rows} records")
            truncate(server, DATABASE)
            results["ceiling"].append(
                run_ceiling(server, sqs_events(queue_messages(consumer_rows, seed=seed + 2)))
            )
            truncate(server, DATABASE)
            results["naive"].append(run_naive(server, queue_messages(naive_rows, seed=seed + 3)))
            progress(
                f"  repetition {repetition + 1}/{repetitions}: consumer {results['consumer'][-1]:,.0f}, "
                f"ceiling {results['ceiling'][-1]:,.0f}, naive {results['naive'][-1]:,.0f} rows/s"
            )
        consumer.consumer.database.discard()
    consumer_rate, ceiling_rate, naive_rate = (median(results[k]) for k in ("consumer", "ceiling", "naive"))
    return {
        "consumer_rows_per_s": round(consumer_rate, 1),
        "ceiling_rows_per_s": round(ceiling_rate, 1),
        "consumer_vs_ceiling": round(consumer_rate / ceiling_rate, 3),
        "naive_rows_per_s": round(naive_rate, 1),
        "consumer_vs_naive": round(consumer_rate / naive_rate, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
