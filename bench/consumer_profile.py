"""Where the consumer's time goes per batch: pyinstrument over the write benchmark's consumer.

python -m bench.consumer_profile [--batches 300]

The same setup as bench.write_path (a TLS-only throwaway MariaDB, the handler loaded as a container
loads it, SQS events of 10 realistic records); prints pyinstrument's call tree of the handler's time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pyinstrument import Profiler

from bench.common import queue_messages, sqs_events
from bench.write_path import load_consumer, run_consumer, tls_database


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.consumer_profile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--batches", type=int, default=300, help="SQS events of 10 records (default 300)")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-profile-") as workdir,
        tls_database(Path(workdir)) as (server, _),
    ):
        consumer = load_consumer(server)
        events = sqs_events(queue_messages(args.batches * 10, seed=1))
        profiler = Profiler(interval=0.0005, use_timing_thread=True)
        with profiler:
            rate = run_consumer(consumer.handler, events)
        consumer.consumer.database.discard()
    print(profiler.output_text(unicode=True, show_all=False, short_mode=False))
    print(f"{args.batches} batches, {rate:,.0f} rows/s under the profiler")


if __name__ == "__main__":
    main()
