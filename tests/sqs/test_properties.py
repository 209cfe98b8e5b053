"""Property-based tests of the queue store, in-process with a controllable clock.

Random interleavings of send, receive, delete, visibility change and time passing, against a
model of what SQS documents, must never lose a message, never deliver a FIFO group out of order
(or while one of its messages is in flight), and never deliver a message more than
maxReceiveCount times instead of moving it to the dead-letter queue.
"""

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from local.sqs.core import QueueStore
from local.sqs.errors import SqsError

MAX_RECEIVE_COUNT = 3
GROUPS = ("a", "b", "c")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ModelMessage:
    body: str
    group: str
    receives: int = 0
    visible_at: float = 0.0
    latest_handle: str | None = None
    handles: list[str] = field(default_factory=list)


class FifoQueueMachine(RuleBasedStateMachine):
    """The model knows every message sent, its receives and its visibility; the store is checked
    against it after every step."""

    @initialize()
    def create_queues(self) -> None:
        self.clock = FakeClock()
        self.store = QueueStore(":memory:", clock=self.clock)
        dead_letter_url = self.call("CreateQueue", QueueName="dlq.fifo", Attributes={"FifoQueue": "true"})[
            "QueueUrl"
        ]
        policy = {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq.fifo", "maxReceiveCount": 3}
        self.queue_url = self.call(
            "CreateQueue",
            QueueName="main.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "10", "RedrivePolicy": json.dumps(policy)},
        )["QueueUrl"]
        self.dead_letter_url = dead_letter_url
        self.messages: dict[str, ModelMessage] = {}
        self.order: dict[str, list[str]] = {group: [] for group in GROUPS}  # bodies not yet deleted or moved
        self.deleted: set[str] = set()
        self.moved: set[str] = set()

    def call(self, action: str, **params) -> dict:
        return self.store.handle(action, params)

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    # ---- actions ----------------------------------------------------------------------------

    @rule(group=st.sampled_from(GROUPS))
    def send(self, group: str) -> None:
        """GIVEN any state WHEN a message is sent THEN it is accepted (and tracked by the model)."""
        body = f"m{len(self.messages)}"
        self.call(
            "SendMessage",
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageGroupId=group,
            MessageDeduplicationId=body,
        )
        self.messages[body] = ModelMessage(body, group)
        self.order[group].append(body)

    @rule(limit=st.integers(1, 10), visibility=st.sampled_from([None, 0, 0, 0, 5, 30]))
    def receive(self, limit: int, visibility: int | None) -> None:
        """GIVEN any state WHEN receiving THEN each group's messages come in order, only from groups
        with nothing in flight, each at most maxReceiveCount times."""
        params = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": limit,
            "MessageSystemAttributeNames": ["All"],
        }
        if visibility is not None:
            params["VisibilityTimeout"] = visibility
        received = self.store.handle("ReceiveMessage", params).get("Messages", [])
        assert len(received) <= limit
        now = self.clock.now
        by_group: dict[str, list[str]] = {}
        for message in received:
            by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
        for group, bodies in by_group.items():
            pending = self.order[group]
            assert all(self.messages[body].visible_at <= now for body in pending), "group was in flight"
            # Heads received maxReceiveCount times were moved to the dead-letter queue on the way.
            while (
                pending
                and pending[0] not in bodies
                and self.messages[pending[0]].receives >= MAX_RECEIVE_COUNT
            ):
                self.moved.add(pending.pop(0))
            assert pending[: len(bodies)] == bodies, "out of order within the group"
        for message in received:
            model = self.messages[message["Body"]]
            model.receives += 1
            assert model.receives <= MAX_RECEIVE_COUNT, "delivered more than maxReceiveCount times"
            assert message["Attributes"]["ApproximateReceiveCount"] == str(model.receives)
            model.visible_at = now + (10 if visibility is None else visibility)
            model.latest_handle = message["ReceiptHandle"]
            model.handles.append(message["ReceiptHandle"])

    def received_messages(self) -> list[ModelMessage]:
        """Messages received and still in the queue as far as the model can tell. One visible again
        after its last allowed receive is left out: the next ReceiveMessage moves it to the dead-letter
        queue if it reaches it, which the model only learns when its group is received again."""
        return [
            m
            for m in self.messages.values()
            if m.handles
            and m.body not in self.deleted | self.moved
            and not (m.receives >= MAX_RECEIVE_COUNT and m.visible_at <= self.clock.now)
        ]

    @precondition(lambda self: self.received_messages())
    @rule(data=st.data(), use_latest=st.booleans())
    def delete(self, data, use_latest: bool) -> None:
        """GIVEN a received message WHEN deleted with its latest handle THEN it is gone; with an
        earlier handle THEN the call succeeds and the message stays."""
        model = data.draw(st.sampled_from(self.received_messages()))
        handle = model.latest_handle if use_latest else model.handles[0]
        self.call("DeleteMessage", QueueUrl=self.queue_url, ReceiptHandle=handle)
        if handle == model.latest_handle:
            self.deleted.add(model.body)
            self.order[model.group].remove(model.body)

    @precondition(lambda self: self.received_messages())
    @rule(data=st.data(), timeout=st.integers(0, 20))
    def change_visibility(self, data, timeout: int) -> None:
        """GIVEN a received message WHEN its visibility changes THEN only while in flight."""
        model = data.draw(st.sampled_from(self.received_messages()))
        change = {
            "QueueUrl": self.queue_url,
            "ReceiptHandle": model.latest_handle,
            "VisibilityTimeout": timeout,
        }
        if model.visible_at <= self.clock.now:
            with pytest.raises(SqsError) as excinfo:
                self.store.handle("ChangeMessageVisibility", change)
            assert excinfo.value.shape == "MessageNotInflight"
            return
        self.store.handle("ChangeMessageVisibility", change)
        model.visible_at = self.clock.now + timeout

    @rule(seconds=st.sampled_from([0.5, 3, 6, 11, 40]))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    # ---- invariants -------------------------------------------------------------------------

    @invariant()
    def nothing_lost(self) -> None:
        """Every message sent is deleted, waiting in the queue, or in the dead-letter queue."""
        main = self.call("GetQueueAttributes", QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        dead = self.call("GetQueueAttributes", QueueUrl=self.dead_letter_url, AttributeNames=["All"])[
            "Attributes"
        ]
        stored = sum(
            int(attributes[name])
            for attributes in (main, dead)
            for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
        )
        assert stored == len(self.messages) - len(self.deleted)

    def drain(self, queue_url: str) -> list[str]:
        drained = []
        while messages := self.call("ReceiveMessage", QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            drained += [message["Body"] for message in messages]
            for message in messages:
                self.call("DeleteMessage", QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return drained

    @rule()
    def drain_everything(self) -> None:
        """GIVEN any history WHEN time runs out every visibility and both queues are drained THEN
        each message not deleted comes out exactly once, in group order in the source queue."""
        self.clock.now += 1000
        from_queue = self.drain(self.queue_url)
        from_dead_letter = self.drain(self.dead_letter_url)
        remaining = set(self.messages) - self.deleted
        assert sorted(from_queue + from_dead_letter) == sorted(remaining)
        for group in GROUPS:
            in_group = [body for body in from_queue if self.messages[body].group == group]
            assert in_group == [body for body in self.order[group] if body in in_group]
        self.deleted |= remaining
        self.order = {group: [] for group in GROUPS}


FifoQueueMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_fifo_queue_properties = FifoQueueMachine.TestCase


@pytest.mark.parametrize("max_receive_count", [1, 2, 5])
def test_poison_message_is_delivered_exactly_max_receive_count_times(max_receive_count):
    """GIVEN a message never deleted WHEN received until it disappears THEN it was delivered
    exactly maxReceiveCount times and now sits in the dead-letter queue."""
    clock = FakeClock()
    store = QueueStore(":memory:", clock=clock)
    dead_letter_url = store.handle("CreateQueue", {"QueueName": "dlq"})["QueueUrl"]
    policy = json.dumps(
        {
            "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq",
            "maxReceiveCount": max_receive_count,
        }
    )
    queue_url = store.handle("CreateQueue", {"QueueName": "q", "Attributes": {"RedrivePolicy": policy}})[
        "QueueUrl"
    ]
    store.handle("SendMessage", {"QueueUrl": queue_url, "MessageBody": "poison"})

    deliveries = 0
    while store.handle("ReceiveMessage", {"QueueUrl": queue_url}).get("Messages"):
        deliveries += 1
        clock.now += 31

    assert deliveries == max_receive_count
    moved = store.handle(
        "ReceiveMessage", {"QueueUrl": dead_letter_url, "MessageSystemAttributeNames": ["All"]}
    )
    assert moved["Messages"][0]["Body"] == "poison"
    assert moved["Messages"][0]["Attributes"]["DeadLetterQueueSourceArn"].endswith(":q")
    store.close()


def test_retention_expires_messages():
    """GIVEN MessageRetentionPeriod 60 WHEN 61 seconds pass THEN the message is gone."""
    clock = FakeClock()
    store = QueueStore(":memory:", clock=clock)
    queue_url = store.handle(
        "CreateQueue", {"QueueName": "q", "Attributes": {"MessageRetentionPeriod": "60"}}
    )["QueueUrl"]
    store.handle("SendMessage", {"QueueUrl": queue_url, "MessageBody": "old"})

    clock.now += 59
    store.run_due_work()
    assert store.handle(
        "GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": ["ApproximateNumberOfMessages"]}
    )["Attributes"] == {"ApproximateNumberOfMessages": "1"}
    clock.now += 2
    store.run_due_work()

    assert "Messages" not in store.handle("ReceiveMessage", {"QueueUrl": queue_url})
    store.close()


def test_deduplication_window_is_five_minutes():
    """GIVEN a FIFO message WHEN the same deduplication id is sent within 5 minutes THEN ignored;
    after 5 minutes THEN accepted as a new message."""
    clock = FakeClock()
    store = QueueStore(":memory:", clock=clock)
    queue_url = store.handle("CreateQueue", {"QueueName": "q.fifo", "Attributes": {"FifoQueue": "true"}})[
        "QueueUrl"
    ]
    send = {"QueueUrl": queue_url, "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d"}

    first = store.handle("SendMessage", send)["MessageId"]
    clock.now += 299
    assert store.handle("SendMessage", send)["MessageId"] == first
    clock.now += 2
    assert store.handle("SendMessage", send)["MessageId"] != first
    store.close()
