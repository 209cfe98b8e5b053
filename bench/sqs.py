"""Benchmark of the local SQS emulator, and of moto's server for comparison.

Clients (plain boto3) and server run in separate processes, as in the local stack. The emulator
is measured on a FIFO queue 100,000 messages deep over 1,000 message groups; moto's server on a
FIFO queue 1,000 deep (its cost per call grows with depth). Single sends come from one client
thread. The batch figures use two client processes, as the event source mapping polls with
several concurrent pollers: one boto3 client costs about 1.7 ms of CPU per batch call on this
machine, which alone caps a single sequential client below 3,000 messages per second.
Run alone with `python -m bench.sqs` (prints the result as JSON; BENCH_QUICK=1 for a smoke run).
"""

import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.servers import SqsEmulator, emulator_store, sqs_client
from local.servers.moto_server import moto_server

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

QUEUE_NAME = "bench.fifo"
BATCH_CLIENTS = 2
# One client's share of a measured run: (client, queue URL, messages, groups, dedup tag) -> messages/s.
Task = Callable[[Any, str, int, int, str], float]
BODY = json.dumps({"request_id": "r", "customer_id": "c", "accepted_at": 0, "payload": {"name": "x" * 200}})


def prefill(data_dir: str, depth: int, groups: int) -> None:
    """Fill the queue through the store in-process: setup, not measured."""
    store = emulator_store(Path(data_dir))
    queue_url = store.handle("CreateQueue", {"QueueName": QUEUE_NAME, "Attributes": {"FifoQueue": "true"}})[
        "QueueUrl"
    ]
    for start in range(0, depth, 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": BODY,
                "MessageGroupId": f"g{i % groups}",
                "MessageDeduplicationId": f"p{i}",
            }
            for i in range(start, min(start + 10, depth))
        ]
        store.handle("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
    store.close()


@contextmanager
def emulator(data_dir: str) -> Iterator[str]:
    server = SqsEmulator(Path(data_dir))
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def single_sends(sqs: "SQSClient", queue_url: str, count: int, groups: int, tag: str) -> float:
    started = time.perf_counter()
    for i in range(count):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=BODY,
            MessageGroupId=f"g{i % groups}",
            MessageDeduplicationId=f"{tag}{i}",
        )
    return count / (time.perf_counter() - started)


def batch_sends(sqs: "SQSClient", queue_url: str, count: int, groups: int, tag: str) -> float:
    started = time.perf_counter()
    for start in range(0, count, 10):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(i),
                "MessageBody": BODY,
                "MessageGroupId": f"g{i % groups}",
                "MessageDeduplicationId": f"{tag}{i}",
            }
            for i in range(start, start + 10)
        ]
        reply = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not reply.get("Failed"), reply["Failed"]
    return count / (time.perf_counter() - started)


def receive_and_delete(sqs: "SQSClient", queue_url: str, count: int, groups: int = 0, tag: str = "") -> float:
    """Receive batches of 10 and delete them, `count` messages in all (groups, tag: unused, for
    the same signature as the send loops)."""
    done = 0
    started = time.perf_counter()
    while done < count:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            raise RuntimeError(f"queue ran dry after {done} messages")
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        reply = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not reply.get("Failed"), reply["Failed"]
        done += len(messages)
    return done / (time.perf_counter() - started)


def timed_worker(
    task: Task, endpoint: str, queue_url: str, count: int, groups: int, tag: str, start: Any
) -> tuple[float, float]:
    """One client process: build the client first, start with the others, report its time span."""
    sqs = sqs_client(endpoint)
    sqs.get_queue_url(QueueName=QUEUE_NAME)  # connect before the clock starts
    start.wait()
    began = time.monotonic()  # system-wide clock: spans of processes compare
    task(sqs, queue_url, count, groups, tag)
    return began, time.monotonic()


def in_parallel(task: Task, endpoint: str, queue_url: str, count: int, groups: int, tag: str) -> float:
    """Messages per second of BATCH_CLIENTS processes sharing `count` messages."""
    context = multiprocessing.get_context("spawn")
    share = count // BATCH_CLIENTS // 10 * 10
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(BATCH_CLIENTS) as pool:
            results = [
                pool.apply_async(
                    timed_worker, (task, endpoint, queue_url, share, groups, f"{tag}{n}-", start)
                )
                for n in range(BATCH_CLIENTS)
            ]
            time.sleep(0.2)
            start.set()
            spans = [result.get(timeout=600) for result in results]
    return share * BATCH_CLIENTS / (max(end for _, end in spans) - min(began for began, _ in spans))


def run(quick: bool = False) -> dict[str, float]:
    depth, groups = (2_000, 100) if quick else (100_000, 1_000)
    sends, batch_messages, received = (100, 500, 500) if quick else (2_000, 10_000, 10_000)
    moto_depth, moto_sends = (100, 10) if quick else (1_000, 30)

    with tempfile.TemporaryDirectory(prefix="bench-sqs-") as data_dir:
        prefill(data_dir, depth, groups)
        with emulator(data_dir) as endpoint:
            sqs = sqs_client(endpoint)
            queue_url = sqs.get_queue_url(QueueName=QUEUE_NAME)["QueueUrl"]
            sqs.send_message(
                QueueUrl=queue_url, MessageBody=BODY, MessageGroupId="g0", MessageDeduplicationId="warm"
            )
            send_rate = single_sends(sqs, queue_url, sends, groups, "s")
            batch_rate = in_parallel(batch_sends, endpoint, queue_url, batch_messages, groups, "b")
            receive_delete_rate = in_parallel(receive_and_delete, endpoint, queue_url, received, groups, "")

        with moto_server(Path(data_dir)) as moto:
            sqs = sqs_client(moto.endpoint)
            queue_url = sqs.create_queue(QueueName=QUEUE_NAME, Attributes={"FifoQueue": "true"})["QueueUrl"]
            batch_sends(sqs, queue_url, moto_depth, groups, "p")
            moto_send_rate = single_sends(sqs, queue_url, moto_sends, groups, "s")

    return {
        "sqs_send_per_s": round(send_rate, 1),
        "sqs_batch_send_per_s": round(batch_rate, 1),
        "sqs_receive_delete_per_s": round(receive_delete_rate, 1),
        "sqs_vs_moto_send": round(send_rate / moto_send_rate, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
