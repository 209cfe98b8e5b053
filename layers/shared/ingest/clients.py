"""AWS clients that fail fast: an answer or an error well inside the time their caller has.

boto3's defaults (several attempts, 60-second timeouts) keep a function waiting for minutes while
a service is away; these clients use short timeouts and only as many attempts as fit in the
caller's limit, so the caller can act on the error (a 503 with Retry-After, a record left in the
queue) before its own time is up.

They are botocore clients made from one botocore session: boto3's `boto3.client` makes the same
client, but importing boto3 also imports s3transfer, which no function uses (docs/benchmarks.md).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal, overload

# botocore is imported where a client is made: the reader imports this module and uses no AWS client.
# The client types are the boto3-stubs packages' (development only: the layer does not ship them).
if TYPE_CHECKING:
    import botocore.session
    from botocore.client import BaseClient
    from botocore.config import Config
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

MAX_ATTEMPTS = 3  # the first try and two retries
# SQS answers in tens of milliseconds; an attempt that takes seconds is better abandoned and retried.
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 3
# botocore's standard retry mode waits at most min(2 ** (n - 1), 20) seconds before retry n.
_MAX_BACKOFF_S = 20


def worst_case_s(attempts: int) -> float:
    """The longest a call of `attempts` attempts can take: each connects and reads up to its timeouts."""
    backoff = sum(min(2 ** (retry - 1), _MAX_BACKOFF_S) for retry in range(1, attempts))
    return attempts * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + backoff


def fail_fast_config(within_s: float) -> Config:
    """The botocore Config of the functions' clients: every call ends within `within_s` seconds."""
    from botocore.config import Config

    attempts = [count for count in range(1, MAX_ATTEMPTS + 1) if worst_case_s(count) <= within_s]
    if not attempts:
        raise ValueError(f"one AWS call may take {worst_case_s(1)} s, more than the {within_s} s it has")
    return Config(
        retries={"total_max_attempts": max(attempts), "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )


@overload
def aws_client(
    service: Literal["rds"], config: Config | None = None, region: str | None = None
) -> RDSClient: ...
@overload
def aws_client(
    service: Literal["secretsmanager"], config: Config | None = None, region: str | None = None
) -> SecretsManagerClient: ...
@overload
def aws_client(
    service: Literal["sqs"], config: Config | None = None, region: str | None = None
) -> SQSClient: ...
def aws_client(service: str, config: Config | None = None, region: str | None = None) -> BaseClient:
    """A low-level client of `service` (what boto3.client returns), credentials from the environment."""
    return _session().create_client(service, region_name=region, config=config)


def forget_credentials() -> None:
    """Make the next aws_client read its credentials again: the session keeps the first ones it found.

    The new session keeps the old one's data loader: the service models and endpoint data it has parsed
    are the same in every environment, so a SnapStart restore does not parse them again (~50 ms).
    """
    loaded = _session().get_component("data_loader")
    _session.cache_clear()
    _session().register_component("data_loader", loaded)


@cache
def _session() -> botocore.session.Session:
    import botocore.session

    return botocore.session.get_session()
