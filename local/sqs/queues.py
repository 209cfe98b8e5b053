"""Queue actions: CreateQueue, GetQueueUrl, ListQueues, GetQueueAttributes, SetQueueAttributes,
DeleteQueue, PurgeQueue, ListDeadLetterSourceQueues; and how queues are addressed (URL, ARN)."""

from typing import Any

from local.sqs import validation
from local.sqs.errors import SqsError, invalid, missing
from local.sqs.model import (
    ACCOUNT,
    COMPUTED_ATTRIBUTES,
    FIFO_DEFAULTS,
    NUMERIC_ATTRIBUTES,
    PURGE_INTERVAL_MS,
    SETTABLE_ATTRIBUTES,
    Queue,
    default_attribute,
)
from local.sqs.storage import Storage

MESSAGE_COUNTS = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
}
MAX_LISTED_QUEUES = 1000
MAX_TOKEN_DIGITS = 9


class QueueAddresses:
    """Queue URLs and ARNs of this emulator, and the queue a request's QueueUrl names."""

    def __init__(self, storage: Storage, base_url: str, region: str) -> None:
        self._queues = storage.queues
        self.base_url = base_url
        self.region = region

    def url(self, queue: Queue) -> str:
        return f"{self.base_url}/{ACCOUNT}/{queue.name}"

    def arn(self, queue: Queue) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{queue.name}"

    def queue(self, params: dict[str, Any]) -> Queue:
        url = params.get("QueueUrl")
        if not url:
            raise missing("QueueUrl")
        queue = self._queues.get(url.rstrip("/").rsplit("/", 1)[-1])
        if queue is None:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return queue


class QueueActions:
    def __init__(self, storage: Storage, addresses: QueueAddresses) -> None:
        self._storage = storage
        self._queues = storage.queues
        self._addresses = addresses

    def create_queue(self, params: dict[str, Any]) -> dict[str, Any]:
        name, attributes = validation.new_queue(params, self._queues)
        existing = self._queues.get(name)
        if existing is not None:
            for key, value in attributes.items():
                if existing.attributes.get(key, default_attribute(key)) != value:
                    raise SqsError(
                        "QueueNameExists",
                        f"A queue already exists with the same name and a different value for {key}",
                    )
            return {"QueueUrl": self._addresses.url(existing)}
        return {"QueueUrl": self._addresses.url(self._storage.add_queue(name, attributes))}

    def get_queue_url(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._queues.get(params.get("QueueName") or "")
        if queue is None:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return {"QueueUrl": self._addresses.url(queue)}

    def list_queues(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("QueueNamePrefix", "")
        names = sorted(name for name in self._queues if name.startswith(prefix))
        token = params.get("NextToken") or "0"
        # Tokens are the offsets this action handed out; anything else is refused.
        if not (token.isascii() and token.isdigit() and len(token) <= MAX_TOKEN_DIGITS):
            raise invalid("Invalid NextToken value.")
        start = int(token)
        limit = None
        if "MaxResults" in params:
            limit = validation.int_parameter(params, "MaxResults", MAX_LISTED_QUEUES, 1, MAX_LISTED_QUEUES)
        page = names[start : start + limit] if limit else names[:MAX_LISTED_QUEUES]
        reply: dict[str, Any] = {}
        if page:
            reply["QueueUrls"] = [self._addresses.url(self._queues[name]) for name in page]
        if limit and start + limit < len(names):
            reply["NextToken"] = str(start + limit)
        return reply

    def get_queue_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        requested = set(params.get("AttributeNames") or [])
        known = SETTABLE_ATTRIBUTES | COMPUTED_ATTRIBUTES | {"All"}
        for name in requested - known:
            raise SqsError("InvalidAttributeName", f"Unknown Attribute {name}.")
        if "All" in requested:
            requested = known
        return {"Attributes": self._attributes(queue, requested)} if requested else {}

    def _attributes(self, queue: Queue, requested: set[str]) -> dict[str, str]:
        attributes = {name: str(NUMERIC_ATTRIBUTES[name][0]) for name in NUMERIC_ATTRIBUTES}
        if queue.fifo:
            attributes.update(FIFO_DEFAULTS)
        attributes.update(queue.attributes)
        now = self._storage.now_ms()
        attributes["QueueArn"] = self._addresses.arn(queue)
        attributes["CreatedTimestamp"] = str(queue.created_at // 1000)
        attributes["LastModifiedTimestamp"] = str(queue.modified_at // 1000)
        if requested & MESSAGE_COUNTS:
            visible, in_flight, delayed = self._storage.message_counts(queue, now)
            attributes["ApproximateNumberOfMessages"] = str(visible)
            attributes["ApproximateNumberOfMessagesNotVisible"] = str(in_flight)
            attributes["ApproximateNumberOfMessagesDelayed"] = str(delayed)
        return {name: value for name, value in attributes.items() if name in requested and value != ""}

    def set_queue_attributes(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        requested = params.get("Attributes") or {}
        if "FifoQueue" in requested and str(requested["FifoQueue"]).lower() != str(queue.fifo).lower():
            raise SqsError("InvalidAttributeValue", "Invalid value for the parameter FifoQueue.")
        self._storage.update_attributes(
            queue, validation.queue_attributes(requested, queue.fifo, self._queues)
        )
        return {}

    def delete_queue(self, params: dict[str, Any]) -> dict[str, Any]:
        self._storage.remove_queue(self._addresses.queue(params))
        return {}

    def purge_queue(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        now = self._storage.now_ms()
        if now - queue.last_purge_at < PURGE_INTERVAL_MS:
            raise SqsError(
                "PurgeQueueInProgress",
                f"Only one PurgeQueue operation on {queue.name} is allowed every 60 seconds.",
            )
        queue.last_purge_at = now
        self._storage.remove_messages(queue)
        return {}

    def list_dead_letter_source_queues(self, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._addresses.queue(params)
        sources = sorted(
            other.name for other in self._queues.values() if other.redrive and other.redrive[0] == queue.name
        )
        return {"queueUrls": [self._addresses.url(self._queues[name]) for name in sources]}
