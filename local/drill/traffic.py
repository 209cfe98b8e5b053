"""The traffic generator: POST /customers at a steady rate, recording every answer it gets.

It behaves as a good client: a 503 or a connection error is retried with the same Idempotency-Key
(after Retry-After), so a retried request can never make a second record. Any other answer is final.
Loss is later counted from this log against the database, never assumed.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RETRYABLE_STATUSES = {503}
MAX_RETRY_WAIT_S = 2.0


@dataclass
class Request:
    """One logical request (one Idempotency-Key), however many attempts it took."""

    key: str
    customer_id: str
    payload: dict
    sent_at: float
    status: int | None = None  # final HTTP status; None while unanswered or on a final connection error
    request_id: str | None = None
    answered_at: float | None = None
    attempts: int = 0
    failed_attempts: list[float] = field(default_factory=list)  # when each failed attempt ended

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class TrafficGenerator:
    def __init__(
        self, api_url: str, rate_rps: float, customers: int, seed: int = 7, give_up_after_s: float = 300
    ):
        self.api_address = urlsplit(api_url).netloc  # host:port
        self.rate_rps = rate_rps
        self.customer_ids = [f"cust-{n:05d}" for n in range(customers)]
        self.random = random.Random(seed)
        self.give_up_after_s = give_up_after_s
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._senders: list[threading.Thread] = []
        self._extra: list[str] = []  # customer ids to send next, ahead of the random ones (poison drill)

    def start(self) -> None:
        self._scheduler = threading.Thread(target=self._schedule, name="traffic", daemon=True)
        self._scheduler.start()

    def stop(self, wait_s: float = 120) -> None:
        """Stop offering new requests and wait for the ones in flight to get their final answer."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.join()
        deadline = time.monotonic() + wait_s
        for sender in self._senders:
            sender.join(timeout=max(deadline - time.monotonic(), 0.1))

    def send_to(self, customer_id: str) -> None:
        """Make the next request go to `customer_id` (instead of a random customer)."""
        with self._lock:
            self._extra.append(customer_id)

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def _schedule(self) -> None:
        interval = 1 / self.rate_rps
        next_at = time.monotonic()
        sequence = 0
        while not self._stopping.is_set():
            with self._lock:
                customer_id = self._extra.pop(0) if self._extra else self.random.choice(self.customer_ids)
            sequence += 1
            key = uuid.uuid4().hex
            payload = {
                "customer_id": customer_id,
                "name": f"Customer {customer_id}",
                "email": f"{customer_id}@example.com",
                # The drill's own identity for the request, so extra rows are found whatever their request_id.
                "attributes": {"drill_key": key, "sequence": sequence},
            }
            request = Request(key=key, customer_id=customer_id, payload=payload, sent_at=time.time())
            with self._lock:
                self.requests.append(request)
            sender = threading.Thread(target=self._send, args=(request,), daemon=True)
            sender.start()
            self._senders.append(sender)
            next_at += interval
            self._stopping.wait(max(next_at - time.monotonic(), 0))

    def _send(self, request: Request) -> None:
        body = json.dumps(request.payload)
        headers = {"Content-Type": "application/json", "Idempotency-Key": request.key}
        deadline = time.monotonic() + self.give_up_after_s
        while True:
            request.attempts += 1
            retry_after = 0.5
            connection = http.client.HTTPConnection(self.api_address, timeout=40)
            try:
                connection.request("POST", "/customers", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                status = response.status
                retry_after = float(response.headers.get("Retry-After") or retry_after)
            except (OSError, http.client.HTTPException):
                status = None
            finally:
                connection.close()
            if status is not None and 200 <= status < 300:
                request.request_id = json.loads(answer)["request_id"]
                request.status, request.answered_at = status, time.time()
                return
            request.failed_attempts.append(time.time())
            if (status is not None and status not in RETRYABLE_STATUSES) or time.monotonic() > deadline:
                request.status, request.answered_at = status, time.time()
                return
            time.sleep(min(retry_after, MAX_RETRY_WAIT_S))
