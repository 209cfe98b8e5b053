"""Where the consumer's time goes per batch, against the write benchmark's TLS MariaDB.

python -m bench.consumer_profile [--batches 300]   # pyinstrument's call tree of the handler
python -m bench.consumer_profile --layers          # the handler's layers peeled off one by one

The same setup as bench.write_path: a TLS-only throwaway MariaDB, the handler loaded as a container
loads it, SQS events of 10 realistic records. --layers runs, in turns of 25 batches each, the
invariant ceiling, `Consumer.process` alone, then with the handler body and each Powertools decorator
added back, and prints each one's median CPU and wall-clock time per batch.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

from pyinstrument import Profiler

from bench.common import DEVNULL, queue_messages, sqs_events, truncate
from bench.write_path import (
    DATABASE,
    BatchWriter,
    invariant_ceiling_writer,
    load_consumer,
    run_consumer,
    tls_database,
)
from local.lambda_runtime import LambdaContext
from local.servers import DatabaseEndpoint

TURN_BATCHES = 25


def profile(consumer: ModuleType, batches: int) -> None:
    events = sqs_events(queue_messages(batches * 10, seed=1))
    profiler = Profiler(interval=0.0005, use_timing_thread=True)
    with profiler:
        rate = run_consumer(consumer.handler, events)
    print(profiler.output_text(unicode=True, show_all=False, short_mode=False))
    print(f"{batches} batches, {rate:,.0f} rows/s under the profiler")


def layers(consumer: ModuleType, server: DatabaseEndpoint, rounds: int = 6) -> None:
    # One context for the whole measurement: the consumer's deadline is the invocation's remaining time.
    context = LambdaContext(function_name="ConsumerFunction", timeout_s=86_400)
    handler = consumer.handler  # tracer(logger(metrics(body))), each decorator keeps __wrapped__
    with server.connect(DATABASE, autocommit=False) as connection:
        writers: dict[str, BatchWriter] = {
            "invariant ceiling": invariant_ceiling_writer(connection),
            "Consumer.process": lambda e: consumer.consumer.process(
                [consumer.SQSRecord(r) for r in e["Records"]]
            ),
            "+ body, @metrics.log_metrics": lambda e: handler.__wrapped__.__wrapped__(e, context),
            "+ @logger.inject_lambda_context": lambda e: handler.__wrapped__(e, context),
            "+ @tracer.capture_lambda_handler": lambda e: handler(e, context),
        }
        names = list(writers)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        wall: dict[str, list[float]] = {name: [] for name in names}
        with contextlib.redirect_stdout(DEVNULL):
            for turn in range(2 * rounds):
                if turn % 2 == 0:
                    truncate(server, DATABASE)
                for index, name in enumerate(names[turn % len(names) :] + names[: turn % len(names)]):
                    events = sqs_events(queue_messages(10 * TURN_BATCHES, seed=100 * turn + index))
                    started_cpu, started = time.thread_time(), time.perf_counter()
                    for event in events:
                        writers[name](event)
                    cpu[name].append((time.thread_time() - started_cpu) / TURN_BATCHES * 1e6)
                    wall[name].append((time.perf_counter() - started) / TURN_BATCHES * 1e6)
    baseline = statistics.median(wall["invariant ceiling"])
    title = f"per batch of 10 (median of {2 * rounds} turns)"
    print(f"{title:40} {'CPU us':>8} {'wall us':>8}  vs ceiling")
    for name in names:
        median_cpu, median_wall = statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"{name:40} {median_cpu:8.0f} {median_wall:8.0f}  {baseline / median_wall:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.consumer_profile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--batches", type=int, default=300, help="SQS events of 10 records (default 300)")
    parser.add_argument("--layers", action="store_true", help="time the handler's layers one by one")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir,
        tls_database(Path(workdir)) as (server, _),
    ):
        consumer = load_consumer(server)
        if args.layers:
            layers(consumer, server)
        else:
            profile(consumer, args.batches)
        consumer.consumer.database.discard()


if __name__ == "__main__":
    main()
