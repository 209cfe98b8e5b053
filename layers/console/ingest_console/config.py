"""The demo console's settings on a deployed stack, read as every function's are (ingest.config)."""

from __future__ import annotations

from pydantic import Field

from ingest.config import DatabaseSettings, EnvironmentSettings, QueueUrl


class ConsoleSettings(EnvironmentSettings):
    """The demo console on a deployed stack. It reads the ledger through the cluster endpoint (the
    writer, DB_HOST) and counts a run's rows on each instance through its instance endpoint, as the
    read-only database user (IAM token, TLS verified against AMAZON_RDS_ROOTS)."""

    database: DatabaseSettings
    cluster_id: str = Field(validation_alias="DB_CLUSTER_ID")
    queue_url: QueueUrl = Field(validation_alias="QUEUE_URL")
    dead_letter_queue_url: QueueUrl = Field(validation_alias="DEAD_LETTER_QUEUE_URL")
    # What the page needs to sign in (GET /console/config.json): the user pool's sign-in domain (host
    # name) and the console's app client.
    sign_in_domain: str = Field(validation_alias="SIGN_IN_DOMAIN")
    client_id: str = Field(validation_alias="CONSOLE_CLIENT_ID")
