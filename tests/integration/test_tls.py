"""TLS to the database is verified: the chain against the trust roots, the host name against the certificate.

RDS Proxy presents an ACM certificate for its endpoint name; here a MariaDB with a certificate from a
local CA (local.servers.tls) plays that part, so each way verification can fail is shown failing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from cryptography import x509

from ingest.config import DatabaseSettings
from ingest.connection import Database, DatabaseUnavailable
from local.servers import MariaDB, database_env, free_port
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
