"""TLS to the database is verified: the chain against the trust roots, the host name against the certificate.

RDS Proxy presents an ACM certificate for its endpoint name; here a MariaDB with a certificate from a
local CA (local.servers.tls) plays that part, so each way verification can fail is shown failing.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from cryptography import x509
from pymysql.constants import CLIENT, CR

from ingest.config import DatabaseSettings
from ingest.connection import Database, DatabaseUnavailable
from local.servers import DatabaseEndpoint, MariaDB, database_env, free_port
from local.servers.tls import ServerCertificates, make_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificates:
    """A local CA and a server certificate for the name "localhost" only (not 127.0.0.1)."""
    files = make_certificates(tmp_path_factory.mktemp("tls"), hosts=("localhost",))
    server = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") not in names.get_values_for_type(x509.IPAddress)
    return files


@pytest.fixture(scope="module")
def tls_server(
    certificates: ServerCertificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MariaDB]:
    server = MariaDB(
        port=free_port(), datadir=tmp_path_factory.mktemp("tls-db"), name="tls", tls=certificates
    )
    server.start()
    yield server
    server.stop()


def settings_for(server: MariaDB, host: str, ca: Path | None = None) -> DatabaseSettings:
    """Root over `host` with verified TLS, trusting `ca` (None: the shipped Amazon roots)."""
    env = database_env(host, server.port, "mysql", "root", "") | {
        "DB_TLS": "verify",
        "DB_CONNECT_TIMEOUT": "3",
    }
    return DatabaseSettings.from_env(env | ({"DB_CA_BUNDLE": str(ca)} if ca is not None else {}))


def test_a_certificate_from_a_trusted_root_for_the_right_name_connects_encrypted(
    tls_server: MariaDB, certificates: ServerCertificates
) -> None:
    # GIVEN the server's CA as DB_CA_BUNDLE WHEN connecting by the certificate's name THEN TLS is in use
    database = Database(settings_for(tls_server, "localhost", certificates.ca))
    with database.connection().cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        assert cursor.fetchone()[1].startswith("TLSv1.")


def test_a_certificate_outside_the_shipped_amazon_roots_is_refused(tls_server: MariaDB) -> None:
    # GIVEN no DB_CA_BUNDLE: the trust roots are the ones shipped in the layer, Amazon's, which did
    # not sign this certificate WHEN connecting THEN the chain is refused
    database = Database(settings_for(tls_server, "localhost"))
    with pytest.raises(DatabaseUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        database.connection()


def test_a_certificate_for_another_host_name_is_refused(
    tls_server: MariaDB, certificates: ServerCertificates
) -> None:
    # GIVEN the right CA WHEN connecting by an address the certificate does not name THEN it is refused
    database = Database(settings_for(tls_server, "127.0.0.1", certificates.ca))
    with pytest.raises(DatabaseUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|match"):
        database.connection()


def test_a_server_with_tls_refuses_plain_connections(tls_server: MariaDB) -> None:
    # GIVEN a local server started with a certificate WHEN a client connects without TLS THEN it is
    # refused, so whatever runs against it (the benchmark's write paths) is known to be encrypted
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host="localhost", port=tls_server.port, user="root", password="", connect_timeout=3)
    assert refused.value.args[0] == 1045  # access denied: secure transport required


def test_a_server_that_does_not_offer_tls_is_refused(
    database_server: DatabaseEndpoint, certificates: ServerCertificates
) -> None:
    # GIVEN a MariaDB started without TLS, and a client that requires verified TLS
    env = database_env(
        "localhost", database_server.port, "mysql", database_server.user, database_server.password
    )
    settings = DatabaseSettings.from_env(env | {"DB_TLS": "verify", "DB_CA_BUNDLE": str(certificates.ca)})

    # WHEN it connects THEN it is refused as the database being unavailable, not logged in in clear
    with pytest.raises(DatabaseUnavailable) as refused:
        Database(settings).connection()
    assert refused.value.__cause__.args[0] == CR.CR_SSL_CONNECTION_ERROR


class PlainTextServer:
    """Plays a MySQL server that does not offer TLS and asks for the password in clear text (the
    plugin an IAM token travels with); keeps every byte the client sends."""

    # Protocol 4.1 with plugin authentication, and no SSL capability.
    CAPABILITIES = (
        CLIENT.LONG_PASSWORD | CLIENT.CONNECT_WITH_DB | CLIENT.PROTOCOL_41 | CLIENT.SECURE_CONNECTION
    ) | CLIENT.PLUGIN_AUTH

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _packet(sequence: int, payload: bytes) -> bytes:
        return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload

    def _greeting(self) -> bytes:
        salt = b"abcdefghijklmnopqrst"
        return (
            b"\x0a8.0.36-not-tls\x00"
            + struct.pack("<I", 7)
            + salt[:8]
            + b"\x00"
            + struct.pack("<H", self.CAPABILITIES & 0xFFFF)
            + b"\x2d"  # utf8mb4
            + struct.pack("<H", 2)  # autocommit
            + struct.pack("<H", self.CAPABILITIES >> 16)
            + bytes([len(salt) + 1])
            + bytes(10)
            + salt[8:]
            + b"\x00"
            + b"mysql_clear_password\x00"
        )

    def _read_packet(self, connection: socket.socket) -> bytes:
        data = connection.recv(65536)
        self.received += data
        return data

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.settimeout(5)
            connection.sendall(self._packet(0, self._greeting()))
            try:
                if self._read_packet(connection):
                    # An auth switch to the clear-text plugin: the password comes next, as is.
                    connection.sendall(self._packet(2, b"\xfemysql_clear_password\x00"))
                    while self._read_packet(connection):
                        pass
            except OSError:
                pass

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def plain_text_server() -> Iterator[PlainTextServer]:
    server = PlainTextServer()
    yield server
    server.close()


def test_no_credential_is_sent_to_a_server_that_does_not_offer_tls(
    plain_text_server: PlainTextServer, certificates: ServerCertificates
) -> None:
    # GIVEN something in the database's place that answers the greeting without offering TLS and would
    # take the IAM token in clear text, and a client with IAM authentication and verified TLS
    env = database_env("localhost", plain_text_server.port, "ingest", "ingest_app", "") | {
        "DB_AUTH": "iam",
        "AWS_REGION": "us-east-1",
        "DB_CA_BUNDLE": str(certificates.ca),
        "DB_TLS": "verify",
    }
    database = Database(DatabaseSettings.from_env(env))

    # WHEN it connects
    with pytest.raises(DatabaseUnavailable):
        database.connection()
    plain_text_server.close()

    # THEN it sent nothing at all after the greeting: no user name, no token
    assert bytes(plain_text_server.received) == b""
