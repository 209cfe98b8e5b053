"""Each function's settings: required variables are required, bad values are refused, both at start."""

from __future__ import annotations

import pytest

from ingest.clients import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, fail_fast_config, worst_case_s
from ingest.config import (
    AMAZON_TRUST_ROOTS,
    ConfigurationError,
    ConsumerSettings,
    DbAuth,
    MigratorSettings,
    ProducerSettings,
    ReaderSettings,
)
from ingest.errors import API_GATEWAY_TIMEOUT_S
from local.template import Template
from tests.conftest import load_handler

DATABASE = {
    "DB_HOST": "proxy.example",
    "DB_NAME": "ingest",
    "DB_USER": "ingest_app",
    "AWS_REGION": "us-east-1",
}
QUEUES = {
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/customer-ingest.fifo",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/customer-ingest-dlq.fifo",
    "POISON_RECEIVE_COUNT": "25",
}


def test_the_consumer_reads_database_queue_and_backoff_settings_into_one_object():
    settings = ConsumerSettings.from_env(DATABASE | QUEUES | {"RETRY_BASE_SECONDS": "7"})

    assert settings.database.host == "proxy.example"
    assert settings.database.auth is DbAuth.IAM
    assert settings.queue_url == QUEUES["QUEUE_URL"]
    assert settings.dead_letter_queue_url == QUEUES["DEAD_LETTER_QUEUE_URL"]
    assert settings.poison_receive_count == 25
    assert settings.retry.base_seconds == 7


@pytest.mark.parametrize("variable", ["QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "POISON_RECEIVE_COUNT"])
@pytest.mark.parametrize("absent", ["unset", "blank"])
def test_the_consumer_refuses_to_start_without_a_queue_setting(variable, absent):
    env = DATABASE | QUEUES
    if absent == "unset":
        del env[variable]
    else:
        env[variable] = "  "

    with pytest.raises(ConfigurationError, match=f"environment variable {variable} is required"):
        ConsumerSettings.from_env(env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("QUEUE_URL", "customer-ingest.fifo"), ("POISON_RECEIVE_COUNT", "many"), ("POISON_RECEIVE_COUNT", "0")],
)
def test_the_consumer_refuses_an_invalid_queue_setting_naming_it(variable, value):
    with pytest.raises(ConfigurationError, match=f"environment variable {variable}='{value}' is invalid"):
        ConsumerSettings.from_env(DATABASE | QUEUES | {variable: value})


def test_a_consumer_deployed_without_its_queue_url_fails_at_import(monkeypatch):
    # GIVEN a consumer's environment without QUEUE_URL (the backoff of promise 6 needs it)
    monkeypatch.delenv("QUEUE_URL", raising=False)
    env = DATABASE | {k: v for k, v in QUEUES.items() if k != "QUEUE_URL"}

    # WHEN the handler module is imported, as a new Lambda container does
    # THEN it fails at once, naming the variable
    with pytest.raises(ConfigurationError, match="QUEUE_URL is required"):
        load_handler("consumer", monkeypatch, env)


def test_the_producer_needs_its_queue_url():
    with pytest.raises(ConfigurationError, match="QUEUE_URL is required"):
        ProducerSettings.from_env({})
    assert ProducerSettings.from_env({"QUEUE_URL": QUEUES["QUEUE_URL"]}).queue_url == QUEUES["QUEUE_URL"]


def test_the_reader_needs_its_database():
    with pytest.raises(ConfigurationError, match="DB_HOST is required"):
        ReaderSettings.from_env({"DB_USER": "u", "AWS_REGION": "us-east-1"})
    assert ReaderSettings.from_env(DATABASE).database.port == 3306


def test_tls_trusts_the_shipped_amazon_roots_unless_told_another_bundle():
    # GIVEN the functions' settings without DB_CA_BUNDLE (as template.yaml deploys them) THEN the
    # shipped Amazon roots; GIVEN a bundle (a local CA) THEN that one
    assert ReaderSettings.from_env(DATABASE).database.ca_bundle == AMAZON_TRUST_ROOTS
    assert AMAZON_TRUST_ROOTS.is_file()
    local = ReaderSettings.from_env(DATABASE | {"DB_CA_BUNDLE": "/etc/ssl/local-ca.pem"})
    assert str(local.database.ca_bundle) == "/etc/ssl/local-ca.pem"


def test_the_migrator_needs_the_users_it_creates():
    with pytest.raises(ConfigurationError) as refused:
        MigratorSettings.from_env(DATABASE)
    assert "APP_DB_USER is required" in str(refused.value)
    assert "READER_DB_USER is required" in str(refused.value)

    settings = MigratorSettings.from_env(DATABASE | {"APP_DB_USER": "app", "READER_DB_USER": "reader"})
    assert (settings.app_db_user, settings.reader_db_user) == ("app", "reader")


def test_a_login_with_a_secret_needs_the_secrets_arn_and_a_region():
    """GIVEN DB_AUTH=secret (the migrator's master login) THEN the secret's ARN and a region are
    required at start, not at the first login."""
    users = {"APP_DB_USER": "app", "READER_DB_USER": "reader", "DB_AUTH": "secret"}
    with pytest.raises(ConfigurationError) as refused:
        MigratorSettings.from_env(DATABASE | users)
    assert "DB_AUTH=secret needs DB_SECRET_ARN and AWS_REGION" in str(refused.value)

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-1-AbCdEf"
    settings = MigratorSettings.from_env(DATABASE | users | {"DB_SECRET_ARN": arn})
    assert (settings.database.auth, settings.database.secret_arn) == (DbAuth.SECRET, arn)


def test_a_password_never_shows_in_an_error():
    env = {"DB_HOST": "h", "DB_USER": "u", "DB_AUTH": "password", "DB_PASSWORD": "s3cr3t", "DB_PORT": "x"}
    with pytest.raises(ConfigurationError) as refused:
        ReaderSettings.from_env(env)
    assert "DB_PORT" in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


def test_the_sqs_clients_fail_fast_within_what_their_callers_have(monkeypatch):
    # GIVEN the producer and the consumer as Lambda imports them
    producer = load_handler("producer", monkeypatch, QUEUES)
    consumer = load_handler("consumer", monkeypatch, DATABASE | QUEUES)

    # THEN the producer's SQS call and its answer fit in its Timeout in template.yaml, itself inside
    # API Gateway's (the consumer's share of its Timeout: tests/unit/test_database_timeouts.py)
    timeout_s = Template().function_timeout("ProducerFunction")
    assert producer.SQS_CALL_S + producer.ANSWER_MARGIN_S <= timeout_s < API_GATEWAY_TIMEOUT_S
    # AND both SQS clients use short timeouts, and as many attempts as fit in the time each keeps for
    # one SQS call (two)
    for client, limit_s, attempts in (
        (producer.producer.sqs, producer.SQS_CALL_S, 2),
        (consumer.consumer.sqs, consumer.SQS_CALL_S, 2),
    ):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        assert config.retries["total_max_attempts"] == attempts
        assert worst_case_s(attempts) <= limit_s < worst_case_s(attempts + 1)


def test_a_limit_too_short_for_one_attempt_is_refused():
    with pytest.raises(ValueError, match="more than"):
        fail_fast_config(within_s=worst_case_s(1) - 1)
