"""What a queue is: its name, row id and attributes, and the catalogue of the attributes SQS knows."""

import functools
import json
from dataclasses import dataclass, field

ACCOUNT = "000000000000"
PURGE_INTERVAL_MS = 60 * 1000

# Name -> (default, minimum, maximum) for the numeric attributes SQS validates.
NUMERIC_ATTRIBUTES = {
    "DelaySeconds": (0, 0, 900),
    "MaximumMessageSize": (1048576, 1024, 1048576),
    "MessageRetentionPeriod": (345600, 60, 1209600),
    "ReceiveMessageWaitTimeSeconds": (0, 0, 20),
    "VisibilityTimeout": (30, 0, 43200),
}
FIFO_ONLY_ATTRIBUTES = {"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"}
STORED_ONLY_ATTRIBUTES = {  # accepted and returned, without effect here
    "Policy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "RedriveAllowPolicy",
}
COMPUTED_ATTRIBUTES = {
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
}
SETTABLE_ATTRIBUTES = (
    set(NUMERIC_ATTRIBUTES) | FIFO_ONLY_ATTRIBUTES | STORED_ONLY_ATTRIBUTES | {"RedrivePolicy"}
)
FIFO_DEFAULTS = {
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}


def default_attribute(name: str) -> str | None:
    """The value a queue has for an attribute nobody set (None for those without a default)."""
    if name in NUMERIC_ATTRIBUTES:
        return str(NUMERIC_ATTRIBUTES[name][0])
    return {"FifoQueue": "false", **FIFO_DEFAULTS}.get(name)


@dataclass
class Queue:
    id: int
    name: str
    attributes: dict[str, str]
    created_at: int
    modified_at: int
    last_purge_at: int = field(default=-PURGE_INTERVAL_MS)

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"

    def number(self, name: str) -> int:
        return int(self.attributes.get(name, NUMERIC_ATTRIBUTES[name][0]))

    @property
    def redrive(self) -> tuple[str, int] | None:
        """(dead-letter queue name, maxReceiveCount), or None without a redrive policy."""
        policy = self.attributes.get("RedrivePolicy")
        return parse_redrive_policy(policy) if policy else None


@functools.lru_cache(maxsize=64)
def parse_redrive_policy(policy: str) -> tuple[str, int]:
    parsed = json.loads(policy)
    return queue_name_from_arn(parsed["deadLetterTargetArn"]), int(parsed["maxReceiveCount"])


def queue_name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]
