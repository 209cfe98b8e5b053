"""The local stack heals as AWS does: processes killed from outside under traffic, and a burst of connections.

Every kill is a SIGKILL sent from outside the stack, as a crash would come. After each round the
stack must be back at full strength within seconds (every consumer running, the API answering 2xx,
the queue drained), and the traffic generator's log reconciled against the database must show no
acknowledged record lost and none stored twice.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from ingest_console.queues import queue_depth
from local.drill.reconcile import database_rows
from local.drill.traffic import Request, TrafficGenerator
from local.lambda_runtime import FunctionPool, WorkerProcess
from local.servers import sqs_client
from local.stack import PROXY_SERVICE, QUEUE_SERVICE, Stack
from local.supervisor import Supervisor
from tests.e2e.api_client import call, wait_for
from tests.e2e.conftest import options_on_free_ports

pytestmark = pytest.mark.slow

RATE_RPS = 20
BACK_WITHIN_S = 15  # a cold start on a busy 2-core machine takes a few seconds
DRAIN_TIMEOUT_S = 60  # a killed consumer's batch comes back after the 10 s visibility timeout


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One supervised stack for the module: each test leaves it at full strength for the next."""
    # a killed consumer's messages come back quickly
    options = options_on_free_ports(visibility_timeout=10)
    stack = Stack(options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def sigkill(pid: int | None) -> None:
    assert pid is not None, "the process to kill is running"
    os.kill(pid, signal.SIGKILL)


def wait_until_replaced(worker: WorkerProcess, killed: int | None) -> None:
    """Until the slot runs a fresh process that has loaded its handler: the next kill hits a serving one."""
    wait_for(
        lambda: True if worker.ready and worker.is_alive() and worker.pid != killed else None, BACK_WITHIN_S
    )


def wait_until_restarted(supervisor: Supervisor, service: str, restarts_before: int) -> None:
    wait_for(lambda: True if supervisor.restarts(service) > restarts_before else None, BACK_WITHIN_S)


def environment_of(pool: FunctionPool, busy: bool) -> int:
    """The process id of one of the pool's busy (or idle) environments, as soon as there is one."""

    def pick() -> int | None:
        idle, serving = pool.pids()
        chosen = serving if busy else idle
        return chosen[0] if chosen else None

    return wait_for(pick, BACK_WITHIN_S)


def under_traffic(stack: Stack) -> TrafficGenerator:
    traffic = TrafficGenerator(stack.api.url, RATE_RPS, customers=40, seed=int(time.time()))
    traffic.start()
    time.sleep(1)
    return traffic


def wait_until_drained(stack: Stack, requests: list[Request]) -> None:
    """Until every acknowledged request is in the database and the queue holds nothing."""
    client = sqs_client(stack.queues.endpoint, retries=3)
    acknowledged = {request.key for request in requests if request.acknowledged}

    def drained() -> bool | None:
        stored = {row.drill_key for row in database_rows(stack)}
        return (
            True if acknowledged <= stored and queue_depth(client, stack.queues.queue_url) == (0, 0) else None
        )

    wait_for(drained, timeout=DRAIN_TIMEOUT_S)


def assert_nothing_lost_or_duplicated(stack: Stack, requests: list[Request]) -> None:
    rows = database_rows(stack)
    stored = Counter(row.drill_key for row in rows)
    acknowledged = [request.key for request in requests if request.acknowledged]
    assert len(acknowledged) > 20
    assert [key for key in acknowledged if key not in stored] == [], "acknowledged but not stored"
    assert [key for key, count in stored.items() if count > 1] == [], "stored twice"


def assert_at_full_strength(stack: Stack) -> None:
    """Every consumer slot has a running process and a wave of concurrent POSTs is answered 2xx."""
    mapping = stack.event_source_mapping
    concurrency = len(mapping.workers)
    wait_for(lambda: True if mapping.live_consumers() == concurrency else None, BACK_WITHIN_S)
    statuses = post_concurrently(stack, 10)
    assert statuses == Counter({202: 10})


def post_concurrently(stack: Stack, count: int) -> Counter[int | str]:
    """POST `count` customers at the same moment; the HTTP status, or the error's name, of each."""
    answers: Counter[int | str] = Counter()
    lock = threading.Lock()
    start_together = threading.Barrier(count)
    address = f"{stack.api.host}:{stack.api.port}"

    def post(number: int) -> None:
        connection = http.client.HTTPConnection(address, timeout=60)
        body = {
            "customer_id": f"burst-{number}",
            "name": "Burst",
            "attributes": {"drill_key": uuid.uuid4().hex},
        }
        start_together.wait()
        try:
            connection.request(
                "POST", "/customers", body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            answer: int | str = connection.getresponse().status
        except OSError as error:
            answer = type(error).__name__
        finally:
            connection.close()
        with lock:
            answers[answer] += 1

    threads = [threading.Thread(target=post, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_a_burst_of_200_connections_is_accepted_without_resets(stack: Stack) -> None:
    # GIVEN the running stack
    # WHEN 200 clients connect and POST at the same moment
    answers = post_concurrently(stack, 200)

    # THEN every one is accepted: no connection reset, no refusal, no error
    assert answers == Counter({202: 200})


def test_consumers_killed_from_outside_are_replaced_and_lose_nothing(stack: Stack) -> None:
    # GIVEN traffic flowing through every consumer
    mapping = stack.event_source_mapping
    traffic = under_traffic(stack)
    try:
        # WHEN consumers are killed from outside: one slot twice in a row, then every slot, then all at once
        for slot in [0, 0, *range(len(mapping.workers))]:
            worker = mapping.workers[slot]
            killed = worker.pid
            sigkill(killed)
            # THEN the slot gets a fresh process, whatever it was doing
            wait_until_replaced(worker, killed)
        for worker in mapping.workers:
            sigkill(worker.pid)
        time.sleep(1)
    finally:
        traffic.stop()

    # THEN the stack is back at full strength, and the batches the killed consumers held came back
    assert_at_full_strength(stack)
    wait_until_drained(stack, traffic.requests)
    assert_nothing_lost_or_duplicated(stack, traffic.requests)
    assert all(request.acknowledged for request in traffic.requests), (
        "a consumer's death never reaches the API"
    )


def test_only_the_invocation_of_a_killed_api_worker_fails(stack: Stack) -> None:
    # GIVEN traffic on the producer, and the reader's environments idle
    producer, reader = stack.api_functions
    traffic = under_traffic(stack)
    busy_kills = 3
    try:
        # WHEN idle and busy producer environments are killed from outside, three times each
        for _ in range(busy_kills):
            sigkill(environment_of(producer, busy=False))
            sigkill(environment_of(producer, busy=True))
            time.sleep(0.5)
        # ... and every idle reader environment
        reader_idle, _ = reader.pids()
        assert reader_idle, "the reader has idle environments to kill"
        for pid in reader_idle:
            sigkill(pid)
        time.sleep(0.2)
        reader_answer, _ = call(f"{stack.api.url}/customers/nobody")
    finally:
        traffic.stop()

    # THEN only invocations that were running when their environment died failed, with API Gateway's 502:
    # at most one per kill (an environment picked as idle can take a request in the instant before the
    # kill lands, and is then a busy one). A dead environment reused would fail request after request.
    failures = Counter(request.status for request in traffic.requests if not request.acknowledged)
    assert set(failures) <= {502}
    assert failures[502] <= 2 * busy_kills
    # ... a request after the reader's environments died is served by a fresh one
    assert reader_answer == 404
    # ... and the stack is at full strength, with every acknowledged record stored once
    assert_at_full_strength(stack)
    wait_until_drained(stack, traffic.requests)
    assert_nothing_lost_or_duplicated(stack, traffic.requests)


def test_killed_stand_ins_for_managed_services_are_restarted(stack: Stack) -> None:
    # GIVEN traffic, and the supervisor watching HAProxy, the SQS emulator and both MariaDB instances
    sqs = stack.sqs
    assert sqs is not None, "the stack runs its own SQS emulator"
    supervisor = stack.supervisor
    writer, replica = f"MariaDB {stack.writer.name}", f"MariaDB {stack.replica.name}"
    traffic = under_traffic(stack)
    try:
        # WHEN each is killed from outside, twice
        for _ in range(2):
            for service, pid in (
                (PROXY_SERVICE, lambda: stack.proxy.process.popen.pid),
                (QUEUE_SERVICE, lambda: sqs.process.popen.pid),
                (writer, lambda: stack.writer.process.popen.pid),
                (replica, lambda: stack.replica.process.popen.pid),
            ):
                restarts = supervisor.restarts(service)
                sigkill(pid())
                # THEN the supervisor starts it again within seconds
                wait_until_restarted(supervisor, service, restarts)
                time.sleep(1)
    finally:
        traffic.stop()

    # THEN the stack is at full strength; the clients' retries (503 while the queue was away) all succeeded
    assert_at_full_strength(stack)
    assert all(request.acknowledged for request in traffic.requests)
    wait_until_drained(stack, traffic.requests)
    assert_nothing_lost_or_duplicated(stack, traffic.requests)
