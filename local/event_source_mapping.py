"""An emulation of the Lambda event source mapping for an SQS FIFO queue.

Like Lambda's pollers it long-polls the queue, hands batches of up to BatchSize messages to the
function in the event shape Lambda sends, honours partial batch responses (ReportBatchItemFailures:
successes are deleted, failures stay and come back after their visibility timeout), treats an
exception as the failure of the whole batch, and runs at most MaximumConcurrency invocations at once.
Each concurrent slot owns one worker process (local.lambda_runtime), so a consumer can be killed.
A consumer that dies, however often, fails only the batch it held (its messages come back after
their visibility timeout) and is replaced by a fresh process before its slot takes the next batch,
as Lambda replaces a crashed execution environment; the slot's poller thread carries on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local.lambda_runtime import InvocationFailed, WorkerProcess
from local.servers import sqs_client
from local.template import LOCAL_REGION

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

log = logging.getLogger("local.event_source_mapping")

# Lambda long-polls for 20 s; a shorter wait lets Ctrl-C stop the stack without a pause.
WAIT_TIME_SECONDS = 2
# The eventSource of every record Lambda's SQS event source mapping delivers.
SQS_EVENT_SOURCE = "aws:sqs"


@dataclass
class BatchReport:
    """What one invocation did, for the stack's log."""

    received: int
    deleted: int
    failed: int
    error: str | None = None


def lambda_record(message: MessageTypeDef, queue_arn: str) -> dict[str, Any]:
    """An SQS message as it appears in the Records of a Lambda event."""
    attributes = message.get("Attributes", {})
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: attributes[name]
            for name in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SequenceNumber",
                "MessageGroupId",
                "SenderId",
                "MessageDeduplicationId",
                "ApproximateFirstReceiveTimestamp",
            )
            if name in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": SQS_EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": LOCAL_REGION,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class EventSourceMapping:
    def __init__(
        self,
        endpoint: str,
        queue_url: str,
        queue_arn: str,
        worker_environment: dict[str, str],
        concurrency: int,
        function_timeout_s: float,
        logdir: Path,
        batch_size: int = 10,
        function: str = "consumer",
        function_name: str = "ConsumerFunction",
    ) -> None:
        self.endpoint = endpoint
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch_size = batch_size
        self.workers = [
            WorkerProcess(
                function,
                worker_environment,
                function_name,
                function_timeout_s,
                logdir / f"consumer-{slot}.log",
            )
            for slot in range(concurrency)
        ]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # Fault injection (drill only): how many of the next invocations to kill after the handler
        # returned and before their messages are deleted, as a crash between commit and delete.
        self._crashes_left = 0
        self._crash_lock = threading.Lock()
        self.crashes = 0
        self._failing = False
        self._state_lock = threading.Lock()

    def start(self) -> None:
        for worker in self.workers:  # cold starts in parallel
            worker.spawn()
        for worker in self.workers:
            worker.wait_until_ready()
        for slot, worker in enumerate(self.workers):
            thread = threading.Thread(target=self._poll, args=(worker,), name=f"poller-{slot}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("polling %s with %d concurrent consumers", self.queue_url, len(self.workers))

    def live_consumers(self) -> int:
        """How many consumer processes run and serve now (ConsumerMaxConcurrency at full strength)."""
        return sum(worker.ready and worker.is_alive() for worker in self.workers)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=WAIT_TIME_SECONDS + 35)
        for worker in self.workers:
            worker.kill()

    def crash_after_commit(self, invocations: int = 1) -> None:
        """Kill the consumer of each of the next `invocations` batches between its commit and the delete."""
        with self._crash_lock:
            self._crashes_left += invocations

    def _take_crash(self) -> bool:
        with self._crash_lock:
            if self._crashes_left <= 0:
                return False
            self._crashes_left -= 1
            self.crashes += 1
            return True

    def _poll(self, worker: WorkerProcess) -> None:
        client = sqs_client(self.endpoint, timeout=3)
        while not self._stopping.is_set():
            try:
                self._poll_once(client, worker)
            except InvocationFailed as error:  # its replacement failed to start (or was killed starting)
                log.warning("%s; trying again in 1 s", error)
                self._stopping.wait(1)
            except Exception:
                # Whatever went wrong, the slot keeps polling: Lambda's pollers do not give up.
                log.exception("%s: unexpected error; polling again in 1 s", threading.current_thread().name)
                self._stopping.wait(1)

    def _poll_once(self, client: SQSClient, worker: WorkerProcess) -> None:
        if not worker.is_alive():
            self._replace(worker)
        try:
            messages = client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=WAIT_TIME_SECONDS,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except Exception as error:
            # The queue is away (the queue outage drill): Lambda's pollers back off and retry too.
            log.warning("receive failed (%s); retrying in 1 s", type(error).__name__)
            self._stopping.wait(1)
            return
        if messages:
            self._report(self._invoke(client, worker, messages))

    def _replace(self, worker: WorkerProcess) -> None:
        """Start a fresh environment in place of one that died, before the slot takes another batch."""
        worker.kill()  # reaps the dead process and closes its pipe
        log.warning("a consumer process is gone; starting a fresh one (%s)", worker.log.name)
        started = time.monotonic()
        worker.start()
        log.info(
            "a fresh consumer process serves after %.1f s (%s)", time.monotonic() - started, worker.log.name
        )

    def _invoke(
        self, client: SQSClient, worker: WorkerProcess, messages: list[MessageTypeDef]
    ) -> BatchReport:
        event = {"Records": [lambda_record(message, self.queue_arn) for message in messages]}
        try:
            response = worker.invoke(event)
        except InvocationFailed as error:
            # Nothing is deleted: every message comes back after its visibility timeout.
            return BatchReport(len(messages), 0, len(messages), str(error))
        if self._take_crash():
            worker.kill()  # the slot replaces it before its next batch
            log.warning(
                "drill: killed a consumer after its commit, before deleting %d messages", len(messages)
            )
            return BatchReport(len(messages), 0, len(messages), "killed before delete")
        failed_ids = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        done = [message for message in messages if message["MessageId"] not in failed_ids]
        deleted = self._delete(client, done)
        return BatchReport(len(messages), deleted, len(failed_ids))

    def _delete(self, client: SQSClient, messages: list[MessageTypeDef]) -> int:
        if not messages:
            return 0
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        try:
            reply = client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as error:
            # Committed but not deleted: redelivered later, and the database's primary key absorbs it.
            log.warning(
                "delete failed (%s); %d messages will be redelivered", type(error).__name__, len(entries)
            )
            return 0
        return len(reply.get("Successful", []))

    def _report(self, report: BatchReport) -> None:
        # Per batch at DEBUG; at INFO only the changes between "storing" and "failing", so an outage
        # shows as two lines, not hundreds.
        failing = report.deleted == 0
        log.debug(
            "batch of %d: %d stored, %d left for retry %s",
            report.received,
            report.deleted,
            report.failed,
            report.error or "",
        )
        with self._state_lock:
            changed, self._failing = failing != self._failing, failing
        if changed and failing:
            reason = (report.error or "see consumer-*.log").splitlines()[0]
            log.warning("consumers: batches failing (%s); messages stay in the queue", reason)
        elif changed:
            log.info("consumers: batches are stored again")
