"""Promise 5 on the local stack, driven by the operator CLI: a poison record is set aside in the
dead-letter queue, the cause is fixed, `python -m ops dlq redrive` moves it back, and it is committed
exactly once while its customer's later records keep their order."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from functools import partial

import pytest

from ingest_console.queues import queue_depth
from local.servers import sqs_client
from local.servers.sqs_emulator import DUMMY_CREDENTIALS
from local.stack import DATABASE, Stack, StackOptions
from local.template import LOCAL_REGION
from ops.cli import main
from tests.e2e.api_client import call, committed_record, wait_for

pytestmark = pytest.mark.slow

CUSTOMER = "redrive-1"
# The cause to fix: the database refuses one record of the customer (its name), not the customer itself.
REJECT_POISON = f"""
CREATE TRIGGER {DATABASE}.reject_poison_name BEFORE INSERT ON {DATABASE}.customer_records
FOR EACH ROW BEGIN
    IF JSON_UNQUOTE(JSON_EXTRACT(NEW.payload, '$.name')) = 'Poison' THEN
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'test: this record is poison';
    END IF;
END
"""
FIX_THE_CAUSE = f"DROP TRIGGER {DATABASE}.reject_poison_name"


def test_a_poison_record_redriven_after_the_fix_is_committed_once(
    stack_options: StackOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a customer's first record refused by the database and two later ones
    WHEN the first reaches the dead-letter queue (the later ones commit behind it), the cause is fixed and
    `python -m ops dlq redrive` runs against the local endpoints
    THEN the move task reports it moved, it is committed exactly once, and the customer's profile is still
    the latest record (a redriven older record never overwrites a newer one)."""
    stack = Stack(replace(stack_options, poison_receive_count=2))
    stack.start()
    try:
        stack.writer.execute(REJECT_POISON)
        api = stack.api.url
        request_ids = []
        for number, name in enumerate(("Poison", "Second", "Third")):
            status, accepted = call(
                f"{api}/customers",
                "POST",
                {"customer_id": CUSTOMER, "name": name},
                {"Idempotency-Key": f"redrive-{number}"},
            )
            assert status == 202
            request_ids.append(accepted["request_id"])
        poison, *later = request_ids

        sqs = sqs_client(stack.queues.endpoint)
        queues = stack.queues
        for request_id in later:
            wait_for(partial(committed_record, f"{api}/records/{request_id}"), timeout=90)
        wait_for(lambda: True if queue_depth(sqs, queues.dead_letter_url)[0] == 1 else None, timeout=90)
        assert committed_record(f"{api}/records/{poison}") is None

        stack.writer.execute(FIX_THE_CAUSE)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIALS["aws_access_key_id"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIALS["aws_secret_access_key"])
        out = io.StringIO()
        code = main(
            [
                "--region", LOCAL_REGION,
                "--sqs-endpoint", queues.endpoint,
                "--queue-url", queues.queue_url,
                "--dead-letter-queue-url", queues.dead_letter_url,
                "--poll-interval", "0.5",
                "--output", "json",
                "dlq", "redrive",
            ],
            out=out,
        )  # fmt: skip

        assert code == 0
        redrive = json.loads(out.getvalue())["redrive"]
        assert (redrive["status"], redrive["moved"]) == ("COMPLETED", 1)
        record = wait_for(lambda: committed_record(f"{api}/records/{poison}"), timeout=60)
        assert (record["customer_id"], record["payload"]["name"]) == (CUSTOMER, "Poison")
        rows = stack.writer.query(
            f"SELECT request_id, COUNT(*) AS copies FROM {DATABASE}.customer_records"
            " WHERE customer_id = %s GROUP BY request_id",
            (CUSTOMER,),
        )
        assert {row["request_id"]: row["copies"] for row in rows} == dict.fromkeys(request_ids, 1)
        status, profile = call(f"{api}/customers/{CUSTOMER}")
        assert (status, profile["request_id"], profile["payload"]["name"]) == (200, later[-1], "Third")
        assert queue_depth(sqs, queues.dead_letter_url) == (0, 0)
    finally:
        stack.stop()
