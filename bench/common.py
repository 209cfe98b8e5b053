"""What the benchmarks share: realistic records and events, the database steps, statistics."""

from __future__ import annotations

import math
import os
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.schema import apply_schema
from ingest_console import ledger
from local.servers import DatabaseEndpoint, PortInUseError, free_port
from local.stack import Stack, StackOptions
from local.template import shared_values
from local.testdata import sqs_event, sqs_record

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/customer-ingest.fifo"
CUSTOMERS = 100
# Where the handlers' logs and EMF metrics go while measured (in Lambda: stdout, to CloudWatch).
# Never closed: Powertools loggers keep the stream they found at import.
DEVNULL = open(os.devnull, "w")  # noqa: SIM115


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def stack_on_free_ports(workdir: Path) -> Stack:
    """A local stack (not started) on free ports, its data in `workdir`."""
    for attempt in range(3):
        ports = [free_port() for _ in range(5)]
        stack = Stack(
            StackOptions(
                api_port=ports[0],
                writer_port=ports[1],
                replica_port=ports[2],
                proxy_port=ports[3],
                sqs_port=ports[4],
                workdir=workdir,
            )
        )
        try:
            stack._preflight()
            return stack
        except (PortInUseError, ValueError):  # a free port taken meanwhile, or two alike: draw again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# ---- the database -------------------------------------------------------------------------------


def create_database(server: DatabaseEndpoint, name: str) -> None:
    with server.connect() as connection:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        apply_schema(connection, name)


def truncate(server: DatabaseEndpoint, database: str) -> None:
    with server.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE TABLE customer_records")
        cursor.execute("TRUNCATE TABLE customers")


def count_records(server: DatabaseEndpoint, database: str) -> int:
    """Rows in the ledger, every customer's."""
    with server.connect(database) as connection:
        return ledger.count_records(connection, customer_prefix="")


# ---- realistic data --------------------------------------------------------------------------------

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman")
_STREETS = ("Main Street", "Harbour Road", "Station Avenue", "Mill Lane", "Rue de la Paix", "Hauptstraße")
_CITIES = ("Dublin", "Frankfurt", "Seattle", "São Paulo", "Tokyo", "Zürich", "Cape Town", "Sydney")
_PLANS = ("free", "team", "business", "enterprise")
_TAGS = ("newsletter", "beta", "vip", "churn-risk", "partner", "trial", "annual", "eu", "us", "apac")


def customer_ids(count: int = CUSTOMERS) -> list[str]:
    return [f"cust-{index:04d}" for index in range(count)]


def customer_body(rng: random.Random, customer_id: str) -> dict[str, Any]:
    """A POST /customers body as a CRM would send it: contact fields plus a handful of attributes
    (about 500 bytes of JSON, with some non-ASCII text)."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "customer_id": customer_id,
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{rng.randrange(1000)}@example.com",
        "phone": f"+{rng.randrange(1, 99)} {rng.randrange(100, 999)} {rng.randrange(1_000_000, 9_999_999)}",
        "address": f"{rng.randrange(1, 300)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}",
        "attributes": {
            "plan": rng.choice(_PLANS),
            "seats": rng.randrange(1, 500),
            "marketing_opt_in": rng.random() < 0.5,
            "tags": rng.sample(_TAGS, 3),
            "source": "crm-sync",
            "lifetime_value": round(rng.uniform(0, 50_000), 2),
            "signup_date": f"20{rng.randrange(15, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "notes": "Prefers e-mail; invoices in EUR; contact before renewal.",
        },
    }


def queue_messages(count: int, seed: int = 1, customers: int = CUSTOMERS) -> list[dict[str, Any]]:
    """`count` queue message bodies as the producer writes them, over `customers` distinct customers."""
    rng = random.Random(seed)
    ids = customer_ids(customers)
    start = 1_763_900_000_000_000
    messages = []
    for index in range(count):
        customer_id = rng.choice(ids)
        messages.append(
            {
                "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "customer_id": customer_id,
                "accepted_at": start + index * 137,
                "payload": customer_body(rng, customer_id),
            }
        )
    return messages


def sqs_events(messages: list[dict[str, Any]], batch_size: int = 10) -> list[dict[str, Any]]:
    return [
        sqs_event(
            *(sqs_record(m, sequence=start + i) for i, m in enumerate(messages[start : start + batch_size]))
        )
        for start in range(0, len(messages), batch_size)
    ]


LAMBDA_ENV = {
    **shared_values().powertools_environment,
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
}
