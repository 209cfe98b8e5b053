"""TLS to the database is verified: the chain against the trust roots, the host name against the certificate.

RDS Proxy presents an ACM certificate for its endpoint name; here a MariaDB with a certificate from a
test CA plays that part, so each way verification can fail is shown failing.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingest.config import DatabaseSettings
from ingest.connection import Database, DatabaseUnavailable
from local.servers import MariaDB, database_env, free_port


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and a server certificate for the name "localhost" only (not 127.0.0.1)."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Test Root CA"))
        .issuer_name(_name("Test Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): the key identifiers must be present.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, directory / "server-key.pem")
    assert ipaddress.ip_address("127.0.0.1") not in server.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.IPAddress)
    return directory


class TlsMariaDB(MariaDB):
    """A MariaDB that offers TLS with the test certificate."""

    def __init__(self, certificates: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.certificates = certificates

    def _server_command(self, as_replica: bool) -> list[str]:
        return [
            *super()._server_command(as_replica),
            f"--ssl-ca={self.certificates / 'ca.pem'}",
            f"--ssl-cert={self.certificates / 'server.pem'}",
            f"--ssl-key={self.certificates / 'server-key.pem'}",
        ]


@pytest.fixture(scope="module")
def tls_server(certificates: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMariaDB]:
    server = TlsMariaDB(certificates, port=free_port(), datadir=tmp_path_factory.mktemp("tls-db"), name="tls")
    server.start()
    yield server
    server.stop()


def settings_for(server: MariaDB, host: str) -> DatabaseSettings:
    """Root over `host` with verified TLS (the local stack's settings turn TLS off)."""
    env = database_env(host, server.port, "mysql", "root", "")
    return DatabaseSettings.from_env(env | {"DB_TLS": "verify", "DB_CONNECT_TIMEOUT": "3"})


def test_a_certificate_from_a_trusted_root_for_the_right_name_connects_encrypted(
    tls_server: TlsMariaDB, certificates: Path
) -> None:
    database = Database(settings_for(tls_server, "localhost"), trust_roots=certificates / "ca.pem")
    with database.connection().cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        assert cursor.fetchone()[1].startswith("TLSv1.")


def test_a_certificate_outside_the_shipped_amazon_roots_is_refused(tls_server: TlsMariaDB) -> None:
    # The default trust roots are the ones shipped in the layer: Amazon's, which did not sign this.
    database = Database(settings_for(tls_server, "localhost"))
    with pytest.raises(DatabaseUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        database.connection()


def test_a_certificate_for_another_host_name_is_refused(tls_server: TlsMariaDB, certificates: Path) -> None:
    database = Database(settings_for(tls_server, "127.0.0.1"), trust_roots=certificates / "ca.pem")
    with pytest.raises(DatabaseUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|match"):
        database.connection()
