"""The API path: the producer handler's own time per POST /customers, in-process.

The handler's SQS client answers from botocore's Stubber: boto3 still validates and serialises
the SendMessage call (that is our cost too), but nothing goes over the network. Logs and EMF
metrics are written as in Lambda (to /dev/null here); X-Ray is off (no daemon to send to).
Each repetition gives a p50 and a p99; the figures are the medians over the repetitions.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import uuid
from types import ModuleType
from typing import Any, TextIO

from botocore.stub import Stubber

from bench.common import (
    DEVNULL,
    LAMBDA_ENV,
    QUEUE_URL,
    customer_body,
    customer_ids,
    median,
    percentile,
    progress,
)
from local import testdata
from local.lambda_runtime import LambdaContext, load_function_module

SEND_REPLY = {
    "MessageId": "6a2f3c4e-0000-4000-8000-000000000000",
    "MD5OfMessageBody": "0" * 32,
    "SequenceNumber": "18800000000000000001",
}


def api_event(body: dict, idempotency_key: str) -> dict:
    """POST /customers as API Gateway's REST proxy integration delivers it."""
    return testdata.api_event("POST", "/customers", body, headers={"Idempotency-Key": idempotency_key})


def measure(module: ModuleType, events: list[dict[str, Any]], devnull: TextIO) -> list[float]:
    """Microseconds per invocation."""
    context = LambdaContext(function_name="ProducerFunction")
    handler = module.handler
    timings = []
    with Stubber(module.producer.sqs) as stubber, contextlib.redirect_stdout(devnull):
        for event in events:
            stubber.add_response("send_message", SEND_REPLY)
            started = time.perf_counter_ns()
            reply = handler(event, context)
            timings.append((time.perf_counter_ns() - started) / 1_000)
            if reply["statusCode"] != 202:
                raise RuntimeError(f"producer answered {reply['statusCode']}: {reply.get('body')}")
    return timings


def run(quick: bool = False) -> dict:
    repetitions, requests = (3, 300) if quick else (5, 5_000)
    rng = random.Random(7)
    ids = customer_ids()
    env = LAMBDA_ENV | {"QUEUE_URL": QUEUE_URL, "POWERTOOLS_TRACE_DISABLED": "true"}
    devnull = DEVNULL
    os.environ.update(env)  # the handler reads its settings at import, as in Lambda
    with contextlib.redirect_stdout(devnull):
        module = load_function_module("producer")
    measure(
        module,
        [api_event(customer_body(rng, rng.choice(ids)), uuid.uuid4().hex) for _ in range(200)],
        devnull,
    )
    p50s, p99s = [], []
    for repetition in range(repetitions):
        events = [api_event(customer_body(rng, rng.choice(ids)), uuid.uuid4().hex) for _ in range(requests)]
        timings = measure(module, events, devnull)
        p50s.append(percentile(timings, 0.50))
        p99s.append(percentile(timings, 0.99))
        progress(
            f"  repetition {repetition + 1}/{repetitions}: p50 {p50s[-1]:,.0f} us, p99 {p99s[-1]:,.0f} us"
        )
    return {"producer_us_p50": round(median(p50s), 1), "producer_us_p99": round(median(p99s), 1)}


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
