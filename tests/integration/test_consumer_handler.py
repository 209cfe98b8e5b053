"""The consumer handler against a real MariaDB: promises 1 and 3 of the README, batch by batch."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ingest.config import ConsumerSettings
from ingest.connection import Database
from ingest.consumer import Consumer
from ingest.schema import apply_schema
from local.lambda_runtime import LambdaContext
from local.servers import database_env
from local.testdata import failed_ids, queue_message, sqs_event, sqs_record
from tests.conftest import load_handler
from tests.emf import metric_values

T0 = 1_764_000_000_000_000  # microseconds


@pytest.fixture
def consumer(fresh_database, queues, monkeypatch):
    return load_handler("consumer", monkeypatch, fresh_database.env | queues.env)


def records_of(fresh_database) -> list[tuple]:
    return fresh_database.query("SELECT request_id, customer_id FROM customer_records ORDER BY request_id")


def profile_of(fresh_database, customer_id: str) -> tuple[str, dict]:
    request_id, payload = fresh_database.query(
        "SELECT c.request_id, r.payload FROM customers c JOIN customer_records r USING (request_id) "
        "WHERE c.customer_id = %s",
        (customer_id,),
    )[0]
    return request_id, json.loads(payload)


def test_batch_with_two_customers_commits_every_record_and_both_profiles(
    consumer, fresh_database, lambda_context
):
    # GIVEN a batch with two records of alice and one of bob
    alice_old = queue_message("alice", T0, "r-alice-1", name="Alice v1")
    alice_new = queue_message("alice", T0 + 10, "r-alice-2", name="Alice v2")
    bob = queue_message("bob", T0 + 5, "r-bob-1", name="Bob")
    event = sqs_event(sqs_record(alice_old), sqs_record(bob), sqs_record(alice_new))

    # WHEN the consumer handles it
    response = consumer.handler(event, lambda_context)

    # THEN nothing failed, every record is stored once and each profile is the customer's newest record
    assert failed_ids(response) == []
    assert records_of(fresh_database) == [("r-alice-1", "alice"), ("r-alice-2", "alice"), ("r-bob-1", "bob")]
    assert profile_of(fresh_database, "alice") == ("r-alice-2", alice_new["payload"])
    assert profile_of(fresh_database, "bob") == ("r-bob-1", bob["payload"])


def test_redelivered_and_duplicate_messages_leave_one_row(consumer, fresh_database, lambda_context):
    # GIVEN a record already committed
    message = queue_message("carol", T0, "r-carol-1", name="Carol")
    consumer.handler(sqs_event(sqs_record(message)), lambda_context)

    # WHEN it comes again: redelivered after a crash between commit and delete, and twice in one batch
    redelivered = sqs_record(message, receive_count=2)
    response = consumer.handler(sqs_event(redelivered, sqs_record(message, receive_count=3)), lambda_context)

    # THEN the redelivery succeeds (so SQS deletes it) and there is still exactly one row
    assert failed_ids(response) == []
    assert fresh_database.query("SELECT COUNT(*) FROM customer_records") == [(1,)]


@pytest.mark.parametrize("split_batches", [True, False], ids=["separate-batches", "same-batch"])
def test_an_older_record_arriving_after_a_newer_one_does_not_overwrite_it(
    consumer, fresh_database, lambda_context, split_batches
):
    # GIVEN a newer and an older record of the same customer, delivered newest first
    newer = queue_message("dave", T0 + 1_000, "r-dave-new", email="new@example.com")
    older = queue_message("dave", T0, "r-dave-old", email="old@example.com")

    # WHEN the consumer stores them (a redrive or retry can deliver them in this order)
    if split_batches:
        consumer.handler(sqs_event(sqs_record(newer)), lambda_context)
        consumer.handler(sqs_event(sqs_record(older)), lambda_context)
    else:
        consumer.handler(sqs_event(sqs_record(newer), sqs_record(older)), lambda_context)

    # THEN both are in the ledger and the profile is still the newer one
    assert [row[0] for row in records_of(fresh_database)] == ["r-dave-new", "r-dave-old"]
    assert profile_of(fresh_database, "dave") == ("r-dave-new", newer["payload"])


def test_equal_accepted_at_is_decided_by_request_id(consumer, fresh_database, lambda_context):
    # GIVEN two records with the same accepted_at, the larger request_id arriving first
    high = queue_message("erin", T0, "r-erin-b", name="B")
    low = queue_message("erin", T0, "r-erin-a", name="A")

    # WHEN both are stored
    consumer.handler(sqs_event(sqs_record(high)), lambda_context)
    consumer.handler(sqs_event(sqs_record(low)), lambda_context)

    # THEN the tie goes to the larger request_id, whatever the arrival order
    assert profile_of(fresh_database, "erin")[0] == "r-erin-b"


def test_a_request_re_sent_after_the_dedup_window_does_not_take_the_profile_back(
    consumer, fresh_database, lambda_context
):
    # GIVEN request A, then a newer request B of the same customer, both stored
    first = queue_message("rita", T0, "r-rita-a", name="A")
    consumer.handler(sqs_event(sqs_record(first)), lambda_context)
    consumer.handler(
        sqs_event(sqs_record(queue_message("rita", T0 + 100, "r-rita-b", name="B"))), lambda_context
    )

    # WHEN A is re-sent more than 5 minutes later (SQS no longer deduplicates it; the producer gives
    # the re-sent message its own, later accepted_at)
    resent = {**first, "accepted_at": T0 + 400_000_000}
    response = consumer.handler(sqs_event(sqs_record(resent)), lambda_context)

    # THEN it is a duplicate of A, and the profile stays B: A was accepted first, whatever the resend says
    assert failed_ids(response) == []
    assert fresh_database.query("SELECT COUNT(*) FROM customer_records") == [(2,)]
    assert profile_of(fresh_database, "rita")[0] == "r-rita-b"


def test_a_record_too_deep_for_the_database_is_poison_not_an_outage(consumer, fresh_database, lambda_context):
    # GIVEN a message that bypassed the API with a payload nested deeper than the database's JSON limit
    deep: dict = {}
    for _ in range(40):
        deep = {"d": deep}
    too_deep = sqs_record(queue_message("sam", T0, "r-sam-1", attributes=deep))
    good = sqs_record(queue_message("tina", T0, "r-tina-1"))

    # WHEN it arrives in a batch with a good record
    response = consumer.handler(sqs_event(too_deep, good), lambda_context)

    # THEN only it fails (the error is the data's, not the database being away), and the other commits
    assert failed_ids(response) == [too_deep["messageId"]]
    assert records_of(fresh_database) == [("r-tina-1", "tina")]


def test_a_poison_record_fails_only_itself_and_the_rest_of_its_group(
    consumer, fresh_database, lambda_context
):
    # GIVEN a batch: frank's first record is not a valid message, then another frank record, and
    # two good records of other customers around them
    good_before = sqs_record(queue_message("grace", T0, "r-grace-1"))
    poison = sqs_record('{"request_id": "r-frank-1", "customer_id": "frank"}', group="frank")
    frank_after = sqs_record(queue_message("frank", T0 + 1, "r-frank-2"))
    good_after = sqs_record(queue_message("heidi", T0 + 2, "r-heidi-1"))
    event = sqs_event(good_before, poison, frank_after, good_after)

    # WHEN the consumer handles it
    response = consumer.handler(event, lambda_context)

    # THEN exactly the poison and the later record of its group are reported failed (FIFO order kept)
    assert failed_ids(response) == [poison["messageId"], frank_after["messageId"]]
    # AND the other customers' records are committed
    assert records_of(fresh_database) == [("r-grace-1", "grace"), ("r-heidi-1", "heidi")]


def test_a_record_the_database_rejects_is_isolated_and_the_good_ones_commit(
    consumer, fresh_database, lambda_context
):
    # GIVEN a database rule that rejects ivan's records (a trigger signalling an error, as a
    # constraint would) and a batch mixing ivan with good records
    fresh_database.query(
        "CREATE TRIGGER reject_ivan BEFORE INSERT ON customer_records FOR EACH ROW "
        "IF NEW.customer_id = 'ivan' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rejected'; END IF"
    )
    judy = sqs_record(queue_message("judy", T0, "r-judy-1"))
    ivan = sqs_record(queue_message("ivan", T0 + 1, "r-ivan-1"))
    ivan_later = sqs_record(queue_message("ivan", T0 + 2, "r-ivan-2"))
    mallory = sqs_record(queue_message("mallory", T0 + 3, "r-mallory-1"))

    # WHEN the consumer handles the batch
    response = consumer.handler(sqs_event(judy, ivan, ivan_later, mallory), lambda_context)

    # THEN only ivan's records fail, and the others are committed
    assert failed_ids(response) == [ivan["messageId"], ivan_later["messageId"]]
    assert records_of(fresh_database) == [("r-judy-1", "judy"), ("r-mallory-1", "mallory")]


@pytest.fixture
def own_server(tmp_path):
    """A MariaDB this test may stop and start (the shared test server must stay up)."""
    from local.servers import MariaDB, free_port

    server = MariaDB(port=free_port(), datadir=tmp_path / "db", name="stoppable")
    server.start()
    yield server
    server.stop()


def own_server_consumer(server, queues, monkeypatch):
    """A consumer container on `server`'s database, quick to give up connecting when it is stopped."""
    with server.connect() as connection:
        apply_schema(connection, "ingest")
    env = server.endpoint.env("ingest") | {"DB_CONNECT_TIMEOUT": "1"}
    return load_handler("consumer", monkeypatch, env | queues.env)


def test_with_the_database_stopped_the_whole_batch_fails_and_commits_once_it_is_back(
    own_server, queues, monkeypatch, lambda_context
):
    # GIVEN a consumer container that has already written through its connection
    consumer = own_server_consumer(own_server, queues, monkeypatch)
    assert (
        failed_ids(consumer.handler(sqs_event(sqs_record(queue_message("olga", T0))), lambda_context)) == []
    )
    event = sqs_event(
        sqs_record(queue_message("oscar", T0, "r-oscar-1")),
        sqs_record(queue_message("peggy", T0, "r-peggy-1")),
    )

    # WHEN the database is stopped (an upgrade) and a batch arrives
    own_server.stop()
    response = consumer.handler(event, lambda_context)

    # THEN every record is reported failed, so all of them stay in the queue
    assert sorted(failed_ids(response)) == sorted(record["messageId"] for record in event["Records"])

    # WHEN the database is back and the same batch is delivered again to the same container
    own_server.start()
    response = consumer.handler(event, lambda_context)

    # THEN the container reconnects and the batch commits in full, once
    assert failed_ids(response) == []
    rows = own_server.query(
        "SELECT request_id FROM ingest.customer_records WHERE customer_id <> 'olga' ORDER BY 1"
    )
    assert [row["request_id"] for row in rows] == ["r-oscar-1", "r-peggy-1"]


def test_a_poison_record_dead_lettered_while_the_database_is_down_is_not_delivered_again(
    own_server, queues, monkeypatch, lambda_context
):
    # GIVEN a consumer container whose database is stopped (an upgrade)
    consumer = own_server_consumer(own_server, queues, monkeypatch)
    own_server.stop()
    poison = sqs_record('{"request_id": "r-vera-1", "customer_id": "vera"}', group="vera", receive_count=25)
    behind = sqs_record(queue_message("vera", T0 + 1, "r-vera-2"), receive_count=25)

    # WHEN the poison arrives on its last receive with the customer's next record
    response = consumer.handler(sqs_event(poison, behind), lambda_context)

    # THEN the poison is moved to the dead-letter queue and reported done, so it cannot be moved twice;
    # the record behind it waits in the queue for the database
    assert failed_ids(response) == [behind["messageId"]]
    parked = queues.messages(queues.env["DEAD_LETTER_QUEUE_URL"])
    assert [message["Body"] for message in parked] == [poison["body"]]


def test_records_held_through_a_long_outage_stay_in_the_queue_and_poison_leaves_on_its_first_rejection(
    own_server, queues, monkeypatch, lambda_context
):
    # GIVEN a consumer container whose database is stopped, and records received 300 times already (an
    # outage of over an hour at the capped backoff), far past the poison count of 25
    consumer = own_server_consumer(own_server, queues, monkeypatch)
    own_server.stop()
    good = sqs_record(queue_message("wendy", T0, "r-wendy-1"), receive_count=300)
    refused = sqs_record(queue_message("xavier", T0, "r-xavier-1"), receive_count=300)

    # WHEN they arrive while the database is still down
    during = consumer.handler(sqs_event(good, refused), lambda_context)

    # THEN both stay in the queue for the database: an outage never sends a record to the dead-letter queue
    assert sorted(failed_ids(during)) == sorted([good["messageId"], refused["messageId"]])
    assert queues.messages(queues.env["DEAD_LETTER_QUEUE_URL"]) == []

    # WHEN the database is back with a rule refusing xavier's record, and both arrive once more
    own_server.start()
    own_server.execute(
        "CREATE TRIGGER ingest.reject_xavier BEFORE INSERT ON ingest.customer_records FOR EACH ROW "
        "IF NEW.customer_id = 'xavier' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'rejected'; END IF"
    )
    good["attributes"]["ApproximateReceiveCount"] = refused["attributes"]["ApproximateReceiveCount"] = "301"
    after = consumer.handler(sqs_event(good, refused), lambda_context)

    # THEN the good record is committed, and the refused one, past its poison count, is set aside at once
    assert failed_ids(after) == []
    rows = own_server.query("SELECT request_id FROM ingest.customer_records")
    assert [row["request_id"] for row in rows] == ["r-wendy-1"]
    parked = queues.messages(queues.env["DEAD_LETTER_QUEUE_URL"])
    assert [message["Body"] for message in parked] == [refused["body"]]


def test_rds_proxy_timing_out_on_a_database_connection_is_an_outage_not_poison(
    consumer, queues, fresh_database, lambda_context
):
    # GIVEN a database answering as RDS Proxy does when no database connection frees up during a
    # failover (ERROR 9501), and records received far more often than the poison count
    fresh_database.query(
        "CREATE TRIGGER proxy_borrow_timeout BEFORE INSERT ON customer_records FOR EACH ROW "
        "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 9501, "
        "MESSAGE_TEXT = 'Timed-out waiting to acquire database connection'"
    )
    records = [
        sqs_record(queue_message(customer, T0, f"r-{customer}-1"), receive_count=300)
        for customer in ("yara", "zeno")
    ]

    # WHEN they arrive
    response = consumer.handler(sqs_event(*records), lambda_context)

    # THEN the whole batch waits in the queue for the database: nothing is taken for poison and parked
    assert sorted(failed_ids(response)) == sorted(record["messageId"] for record in records)
    assert queues.messages(queues.env["DEAD_LETTER_QUEUE_URL"]) == []


def test_a_redriven_poison_record_refused_again_is_parked_again(consumer, queues, lambda_context):
    # GIVEN a poison record parked on its last receive, then redriven by an operator: SQS gives the
    # moved message a new message id, and it keeps the producer's deduplication id
    poison_body = '{"request_id": "r-ulla-1", "customer_id": "ulla"}'
    first = sqs_record(poison_body, group="ulla", receive_count=25)
    redriven = sqs_record(poison_body, group="ulla", receive_count=25)
    assert first["messageId"] != redriven["messageId"]

    # WHEN both deliveries are refused on their last receive, within SQS's five-minute deduplication window
    responses = [consumer.handler(sqs_event(record), lambda_context) for record in (first, first, redriven)]

    # THEN each message is reported done and the record is in the dead-letter queue once per message:
    # the redelivered first message is not parked twice, and the redriven one is not dropped as its duplicate
    assert [failed_ids(response) for response in responses] == [[], [], []]
    parked = queues.messages(queues.env["DEAD_LETTER_QUEUE_URL"])
    assert [message["Body"] for message in parked] == [poison_body, poison_body]


def test_a_connection_cut_between_batches_is_replaced_without_failing_the_batch(
    consumer, fresh_database, lambda_context
):
    # GIVEN a consumer container whose reused connection the server has since cut (a proxy reaping
    # it, a failover)
    consumer.handler(sqs_event(sqs_record(queue_message("quinn", T0, "r-quinn-1"))), lambda_context)
    with fresh_database.server.connect() as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
            (fresh_database.name,),
        )
        for (connection_id,) in cursor.fetchall():
            cursor.execute(f"KILL CONNECTION {int(connection_id)}")

    # WHEN the next batch arrives at once (no idle time that would trigger a ping)
    response = consumer.handler(
        sqs_event(sqs_record(queue_message("quinn", T0 + 1, "r-quinn-2"))), lambda_context
    )

    # THEN it is stored on a new connection, not sent back to the queue
    assert failed_ids(response) == []
    assert [row[0] for row in records_of(fresh_database)] == ["r-quinn-1", "r-quinn-2"]


def test_a_poison_record_on_its_last_receive_is_dead_lettered_and_its_group_goes_on(
    consumer, queues, fresh_database, lambda_context
):
    # GIVEN a consumer told the queue's FIFO dead-letter queue (moto) and the poison receive count (25)
    sqs, dead_letter_url = queues.sqs, queues.env["DEAD_LETTER_QUEUE_URL"]
    poison_body = '{"request_id": "r-uma-1", "customer_id": "uma"}'

    # WHEN the poison comes on an earlier receive, then on its 25th, each time with uma's next record
    earlier = consumer.handler(
        sqs_event(
            sqs_record(poison_body, group="uma", receive_count=24),
            sqs_record(queue_message("uma", T0 + 1, "r-uma-2"), receive_count=24),
        ),
        lambda_context,
    )
    last_poison = sqs_record(poison_body, group="uma", receive_count=25)
    last = consumer.handler(
        sqs_event(last_poison, sqs_record(queue_message("uma", T0 + 1, "r-uma-2"), receive_count=25)),
        lambda_context,
    )
    parked = sqs.receive_message(QueueUrl=dead_letter_url, AttributeNames=["All"])["Messages"]

    # THEN before its last receive it fails with its group, as before
    assert len(failed_ids(earlier)) == 2
    # AND on its last receive it is moved to the dead-letter queue, nothing fails, and uma's next record
    # is stored instead of following the poison into the dead-letter queue
    assert failed_ids(last) == []
    assert [message["Body"] for message in parked] == [poison_body]
    assert parked[0]["Attributes"]["MessageGroupId"] == "uma"
    assert records_of(fresh_database) == [("r-uma-2", "uma")]


def test_concurrent_consumers_ride_out_deadlocks_without_failing_batches(fresh_database, queues):
    # GIVEN five consumers at once, as the event source mapping runs them, each on its own customers
    # (FIFO groups never overlap in flight); InnoDB's gap locks make their transactions deadlock now
    # and then (about 1 batch in 170 here without the consumer's retries)
    settings = ConsumerSettings.from_env(fresh_database.env | queues.env)

    def consume(worker: int, failures: list[str]) -> None:
        consumer = Consumer(Database(settings.database), settings, queues.sqs, sqs_call_s=0)  # no deadline
        for batch in range(200):
            records = [
                SQSRecord(sqs_record(queue_message(f"w{worker}-c{(batch + n) % 20}", T0 + batch * 10 + n)))
                for n in range(10)
            ]
            failures.extend(consumer.process(records).failed.values())

    failures: list[str] = []
    # WHEN they each store 200 batches of 10
    threads = [threading.Thread(target=consume, args=(worker, failures)) for worker in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN no batch failed, and every record is stored once
    assert failures == []
    assert fresh_database.query("SELECT COUNT(*) FROM customer_records") == [(10_000,)]


def test_a_database_that_never_answers_gets_the_batch_failed_before_the_invocation_ends(
    queues, monkeypatch, capsys
):
    # GIVEN a database that accepts connections and never answers (a blackholed proxy), timeouts far
    # longer than the invocation has left, and records past their poison count
    with socket.create_server(("127.0.0.1", 0)) as blackhole:
        env = database_env("127.0.0.1", blackhole.getsockname()[1], "ingest", "ingest_app", "secret")
        slow = {"DB_CONNECT_TIMEOUT": "3", "DB_READ_TIMEOUT": "10"}
        consumer = load_handler("consumer", monkeypatch, env | slow | queues.env)
        records = [
            sqs_record(
                queue_message(customer, T0, f"r-{customer}-1"), receive_count=queues.poison_receive_count
            )
            for customer in ("amos", "bea", "cyd")
        ]
        context = LambdaContext(function_name="consumer", timeout_s=4)

        # WHEN a batch arrives with 4 s of the invocation left
        capsys.readouterr()
        response = consumer.handler(sqs_event(*records), context)
        elapsed_s = time.monotonic() - context.started

    # THEN every record is reported failed, with the margin to answer still left
    assert sorted(failed_ids(response)) == sorted(record["messageId"] for record in records)
    assert elapsed_s < context.timeout_s - consumer.ANSWER_MARGIN_S
    # AND as in an outage: counted as the database being unavailable, not as poison, and nothing is
    # moved to the dead-letter queue
    metrics = metric_values(capsys.readouterr().out)
    assert metrics.get("DatabaseUnavailable") == [1.0]
    assert "PoisonRecords" not in metrics
    assert queues.messages(queues.env["DEAD_LETTER_QUEUE_URL"]) == []
