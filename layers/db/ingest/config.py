"""Configuration from the environment, read once per container and checked up front."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# Amazon's root CAs (and the Starfield root they cross-sign from): RDS Proxy presents an ACM
# certificate that chains to them, so no RDS-specific bundle is needed.
AMAZON_TRUST_ROOTS = Path(__file__).with_name("certs") / "amazon-trust-roots.pem"


class ConfigurationError(RuntimeError):
    """A required setting is missing or invalid: a deployment mistake, not a transient fault."""


class DbAuth(StrEnum):
    IAM = "iam"  # a 15-minute token signed locally with the function's role (AWS)
    PASSWORD = "password"  # noqa: S105 - the mode's name, not a password; DB_PASSWORD from the environment (local stack only)


class DbTls(StrEnum):
    VERIFY = "verify"  # certificate chain and host name verified against AMAZON_TRUST_ROOTS
    OFF = "off"  # plain TCP (local stack only)


def _choice[E: StrEnum](env: dict[str, str], name: str, enum: type[E], default: E) -> E:
    raw = env.get(name, default.value)
    try:
        return enum(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ConfigurationError(f"{name}={raw!r} is not one of: {allowed}") from None


def _number(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {raw!r}")
    return value


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"environment variable {name} is required")
    return value


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    name: str
    user: str
    auth: DbAuth
    tls: DbTls
    connect_timeout: float
    region: str | None
    password: str | None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DatabaseSettings:
        env = dict(os.environ if env is None else env)
        host, user = _required(env, "DB_HOST"), _required(env, "DB_USER")
        auth = _choice(env, "DB_AUTH", DbAuth, DbAuth.IAM)
        password = None
        if auth is DbAuth.PASSWORD:
            password = env.get("DB_PASSWORD", "")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if auth is DbAuth.IAM and not region:
            raise ConfigurationError("DB_AUTH=iam needs AWS_REGION to sign the database auth token")
        return cls(
            host=host,
            port=int(_number(env, "DB_PORT", 3306)),
            name=env.get("DB_NAME", "ingest"),
            user=user,
            auth=auth,
            tls=_choice(env, "DB_TLS", DbTls, DbTls.VERIFY),
            connect_timeout=_number(env, "DB_CONNECT_TIMEOUT", 3.0),
            region=region,
            password=password,
        )

    def __repr__(self) -> str:  # never print the password
        return (
            f"DatabaseSettings({self.user}@{self.host}:{self.port}/{self.name}, {self.auth}, tls={self.tls})"
        )


@dataclass(frozen=True)
class RetrySettings:
    """Backoff for batches the database could not take: first retry after base, doubling to max."""

    base_seconds: int
    max_seconds: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RetrySettings:
        env = dict(os.environ if env is None else env)
        base = int(_number(env, "RETRY_BASE_SECONDS", 5))
        # SQS caps a visibility timeout at 12 hours.
        maximum = min(int(_number(env, "RETRY_MAX_SECONDS", 300)), 43_200)
        if base > maximum:
            raise ConfigurationError("RETRY_BASE_SECONDS must not exceed RETRY_MAX_SECONDS")
        return cls(base_seconds=base, max_seconds=maximum)

    def delay_after(self, receive_count: int) -> int:
        """Seconds to keep a message hidden after its receive_count-th failed attempt."""
        exponent = max(receive_count - 1, 0)
        return min(self.base_seconds * 2 ** min(exponent, 30), self.max_seconds)
