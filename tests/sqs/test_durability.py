"""Crash test: SIGKILL the emulator under load, restart it on the same data directory."""

import signal
import subprocess
import sys
import textwrap
import time

from tests.sqs.conftest import ROOT, sqs_client, start_emulator

# Sends FIFO messages one by one and prints each deduplication id once SQS acknowledged it.
SENDER = textwrap.dedent(
    """
    import sys
    from tests.sqs.conftest import sqs_client
    sqs = sqs_client(sys.argv[1])
    for i in range(100_000):
        try:
            sqs.send_message(QueueUrl=sys.argv[2], MessageBody=f"m{i}", MessageGroupId=f"g{i % 10}",
                             MessageDeduplicationId=f"m{i}")
        except Exception:
            break
        print(f"m{i}", flush=True)
    """
)


def test_acknowledged_messages_survive_sigkill_and_in_flight_ones_return(tmp_path):
    """GIVEN a sender under load and three messages in flight WHEN the server is SIGKILLed and
    restarted on the same data directory THEN every acknowledged message is there, once, and the
    in-flight messages come back when their visibility timeout ends."""
    server, endpoint = start_emulator(tmp_path)
    sqs = sqs_client(endpoint)
    queue_url = sqs.create_queue(QueueName="load.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    in_flight_url = sqs.create_queue(QueueName="in-flight")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=in_flight_url, MessageBody=f"held{i}")
    held = sqs.receive_message(QueueUrl=in_flight_url, MaxNumberOfMessages=10, VisibilityTimeout=4)[
        "Messages"
    ]
    assert len(held) == 3
    in_flight_until = time.monotonic() + 4

    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER, endpoint, queue_url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert sender.stdout is not None  # stdout=PIPE
    acknowledged: list[str] = []
    while len(acknowledged) < 300:  # well under way
        line = sender.stdout.readline()
        assert line, "the sender stopped before the kill"
        acknowledged.append(line.strip())
    server.send_signal(signal.SIGKILL)
    server.wait()
    acknowledged += [line.strip() for line in sender.stdout]  # acknowledged before the kill
    sender.wait(10)

    server, endpoint = start_emulator(tmp_path)
    try:
        sqs = sqs_client(endpoint)
        stored = []
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            stored += [message["Body"] for message in messages]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        assert set(acknowledged) <= set(stored)
        assert len(stored) == len(set(stored))

        if time.monotonic() < in_flight_until - 0.5:
            assert "Messages" not in sqs.receive_message(QueueUrl=in_flight_url)
        returned = sqs.receive_message(QueueUrl=in_flight_url, MaxNumberOfMessages=10, WaitTimeSeconds=10)
        assert sorted(message["Body"] for message in returned["Messages"]) == ["held0", "held1", "held2"]
        assert time.monotonic() >= in_flight_until - 0.1
    finally:
        server.terminate()
        server.wait(10)
