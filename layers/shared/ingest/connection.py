"""One database connection per container: opened lazily, checked before use, replaced when broken."""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import pymysql
from pymysql.constants import CLIENT, CR

from ingest.config import ConfigurationError, DatabaseSettings, DbAuth, DbTls
from ingest.retry import Deadline

if TYPE_CHECKING:  # boto3-stubs' types: development only, the layer does not ship them
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Server errors that mean "not now" rather than "never": the instance is shutting down or restarting,
# read-only during a failover, the connection was cut, or a lock a later attempt will not meet.
TRANSIENT_SERVER_ERRORS = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1152,  # aborted connection
        1158,
        1159,
        1160,
        1161,  # network read/write errors and timeouts
        1205,  # lock wait timeout
        1213,  # deadlock
        1290,  # --read-only (a writer demoted, or a replica not yet promoted)
        1317,  # query interrupted (connection killed)
        1836,  # read-only mode (MariaDB)
        1927,  # connection killed (MariaDB)
        4031,  # disconnected by the server for inactivity (MySQL 8)
        # RDS Proxy: "ERROR 9501 (HY000): Timed-out waiting to acquire database connection" when no
        # database connection frees up within its borrow timeout, as during a failover or a restart
        # (Amazon RDS User Guide, "Troubleshooting for RDS Proxy", RDS for MySQL).
        9501,
    }
)
CLIENT_ERRORS = range(2000, 3000)  # CR_* codes: the client lost or could not reach the server
# Round trips of opening a connection after the TCP connect, each bounded by the read timeout: the
# server's greeting, the TLS handshake (two), the answer to the login, the switch to the clear-text
# plugin an IAM token travels with, and SET NAMES. RDS Proxy's wait for a database connection
# (ConnectionBorrowTimeout) happens inside one of these reads or the statement's, so it is cut by them.
HANDSHAKE_ROUND_TRIPS = 6
# A connection unused for longer than this is pinged before use.
PING_AFTER_IDLE_S = 5.0
# The socket timeout once a deadline has passed: the next read or write fails at once (0 would make
# the socket non-blocking instead).
EXPIRED_TIMEOUT_S = 0.001


class DatabaseUnavailable(RuntimeError):
    """The database cannot take writes right now; whatever was asked must wait and be retried."""


def is_transient(error: BaseException) -> bool:
    """True when the error says the database is away or busy, not that the statement or data is wrong.

    Anything else (a constraint, a trigger's SIGNAL, bad data) is the record's own problem: the
    consumer then isolates the record instead of holding the whole batch back.
    """
    if isinstance(error, (pymysql.err.InterfaceError, OSError)):
        return True
    code = error.args[0] if isinstance(error, pymysql.MySQLError) and error.args else None
    # Server codes from 3000 up (MySQL 8, MariaDB) are about the statement or the data, like a JSON
    # document too deep: not transient unless listed.
    return isinstance(code, int) and (code in TRANSIENT_SERVER_ERRORS or code in CLIENT_ERRORS)


def error_label(error: BaseException) -> str:
    """The error's class and code, without its message: a server's message can quote row values."""
    code = error.args[0] if isinstance(error, pymysql.MySQLError) and error.args else None
    return f"{type(error).__name__} {code}" if isinstance(code, int) else type(error).__name__


def _within(timeout: float, deadline: Deadline | None) -> float:
    """`timeout`, cut to the time left before `deadline`."""
    if deadline is None:
        return timeout
    return min(timeout, max(deadline.remaining_s(), EXPIRED_TIMEOUT_S))


class GuardedConnection(pymysql.Connection):  # type: ignore[type-arg]
    """pymysql's connection with two guards: TLS when it was asked for, and a deadline.

    TLS: given `ssl`, pymysql encrypts only when the server's greeting offers it (the SSL capability)
    and otherwise logs in in clear (Connection._request_authentication, PyMySQL 1.1), which with
    DB_AUTH=iam would send the IAM token as a clear-text password. A server, or anything in its place,
    that does not offer TLS is refused here after its greeting, before the client has sent a byte.

    Deadline: pymysql gives the socket its timeout from `_read_timeout` and `_write_timeout` before
    every read and write (Connection._read_bytes and _write_bytes, PyMySQL 1.1); each is cut here to
    the time left before `deadline`, so no round trip, the TLS handshake included, outlasts it.
    """

    server_capabilities: int  # from the server's greeting

    def __init__(self, *, deadline: Deadline | None = None, **kwargs: Any) -> None:
        self.deadline = deadline
        super().__init__(**kwargs)

    @property
    def _read_timeout(self) -> float | None:
        return self._read_limit if self._read_limit is None else _within(self._read_limit, self.deadline)

    @_read_timeout.setter
    def _read_timeout(self, value: float | None) -> None:
        self._read_limit = value

    @property
    def _write_timeout(self) -> float | None:
        return self._write_limit if self._write_limit is None else _within(self._write_limit, self.deadline)

    @_write_timeout.setter
    def _write_timeout(self, value: float | None) -> None:
        self._write_limit = value

    def _request_authentication(self) -> None:
        if self.ssl and not self.server_capabilities & CLIENT.SSL:
            raise pymysql.err.OperationalError(
                CR.CR_SSL_CONNECTION_ERROR, "the server does not offer TLS; no credentials sent in clear"
            )
        super()._request_authentication()  # type: ignore[misc]


class Database:
    """Hands out a live connection, reusing the container's one while it works.

    Connection setup issues no session SET beyond the character set, so RDS Proxy can multiplex
    (no pinning); transactions are explicit (BEGIN ... COMMIT) on a server-default autocommit session.
    """

    def __init__(self, settings: DatabaseSettings, select_database: bool = True) -> None:
        self.settings = settings
        self._select_database = select_database
        self._connection: GuardedConnection | None = None
        # Wall clock, not monotonic: it must count the time a frozen Lambda container was suspended.
        self._last_used = 0.0

    @cached_property
    def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.tls is DbTls.OFF:
            return None
        # create_default_context: CERT_REQUIRED and check_hostname, TLS 1.2 or later.
        return ssl.create_default_context(cafile=str(self.settings.ca_bundle))

    def _password(self) -> str:
        if self.settings.auth is DbAuth.IAM:
            return iam_auth_token(self.settings)
        if self.settings.auth is DbAuth.SECRET:
            return secret_password(self.settings)
        password = self.settings.password
        return password.get_secret_value() if password is not None else ""

    def _open(self, deadline: Deadline | None) -> GuardedConnection:
        settings = self.settings
        return GuardedConnection(
            deadline=deadline,
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=self._password(),
            database=settings.name if self._select_database else None,
            charset="utf8mb4",
            ssl=self._tls_context,
            connect_timeout=_within(settings.connect_timeout, deadline),
            read_timeout=settings.read_timeout,
            write_timeout=settings.read_timeout,
            autocommit=None,
        )

    def connection(self, deadline: Deadline | None = None) -> GuardedConnection:
        """A connection believed live; raises DatabaseUnavailable if none can be had.

        A connection idle for a while (a frozen container, a proxy that reaped it) is pinged first.
        One in steady use is not: a round trip per batch costs more than the rare failure it would
        catch, and a connection that died since its last use fails its next statement with a
        transient error, which the caller answers with a new connection.
        With a deadline, every connect, read and write on the connection ends by it, until the next call.
        """
        if self._connection is not None:
            self._connection.deadline = deadline
            idle_s = time.time() - self._last_used
            try:
                if idle_s >= PING_AFTER_IDLE_S or not self._connection.open:
                    self._connection.ping(reconnect=False)
                self._last_used = time.time()
                return self._connection
            except Exception:  # any failure of the old connection means: open a new one
                self.discard()
        try:
            self._connection = self._open(deadline)
        except ConfigurationError:
            raise  # a deployment mistake: waiting for the database would not mend it
        except Exception as error:
            # Whatever the reason (down, failing over, credentials), no connection means no writes now.
            raise DatabaseUnavailable(
                f"cannot connect to {settings_label(self.settings)}: {error}"
            ) from error
        self._last_used = time.time()
        return self._connection

    def discard(self) -> None:
        """Drop the connection (after an error that may have left it half-used)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closing a broken socket may fail; the connection is gone either way.
            with contextlib.suppress(Exception):
                connection.close()


def worst_case_s(settings: DatabaseSettings, round_trips: int = 1) -> float:
    """The longest a piece of work of `round_trips` round trips through `Database` can take when every
    step takes just under its timeout.

    The ping of an idle connection, a new connection (TCP connect and handshake), then the round trips.
    """
    read = settings.read_timeout
    return read + settings.connect_timeout + HANDSHAKE_ROUND_TRIPS * read + round_trips * read


def settings_label(settings: DatabaseSettings) -> str:
    return f"{settings.host}:{settings.port}/{settings.name}"


@cache
def _rds_client(region: str | None) -> RDSClient:
    # Imported here: a function with password authentication (the local stack) never needs it.
    from ingest.clients import aws_client

    return aws_client("rds", region=region)


def forget_token_signer() -> None:
    """Sign the next IAM token with a new client, and so with the credentials the environment has now."""
    _rds_client.cache_clear()


@cache
def _secrets_client(region: str | None) -> SecretsManagerClient:
    from ingest.clients import aws_client

    return aws_client("secretsmanager", region=region)


def secret_password(settings: DatabaseSettings) -> str:
    """The password a login with DB_AUTH=secret sends, read from the secret at every login: RDS rotates
    the master user's password in its secret ("Password management with Amazon Aurora and AWS Secrets
    Manager", Aurora User Guide), so a copy kept since the last login may be stale."""
    assert settings.secret_arn, "DatabaseSettings refuses DB_AUTH=secret without DB_SECRET_ARN"
    answer = _secrets_client(settings.region).get_secret_value(SecretId=settings.secret_arn)
    credentials = json.loads(answer["SecretString"])
    if credentials.get("username") != settings.user:
        raise ConfigurationError(
            f"secret {settings.secret_arn} holds the login of another user than DB_USER={settings.user}"
        )
    return str(credentials["password"])


def iam_auth_token(settings: DatabaseSettings) -> str:
    """The password a login with DB_AUTH=iam sends."""
    # Signed locally with the function's credentials (SigV4, valid 15 minutes): no network call.
    return _rds_client(settings.region).generate_db_auth_token(
        DBHostname=settings.host, Port=settings.port, DBUsername=settings.user, Region=settings.region
    )
