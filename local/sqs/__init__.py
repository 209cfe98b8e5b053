"""Local SQS emulator: the SQS JSON protocol, FIFO-faithful, durable in SQLite.

Run it with `python -m local.sqs --port 9324 --data DIR`; import QueueStore for in-process tests.
"""

from local.sqs.core import QueueStore
from local.sqs.errors import SqsError
from local.sqs.server import SqsServer

__all__ = ["QueueStore", "SqsError", "SqsServer"]
