"""The schema, applied idempotently: by the migrator custom resource on deploy and by the local stack."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pymysql

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")

# Least privilege for the functions' database users: the consumer reads and writes rows, nothing
# else; the reader only reads.
APP_PRIVILEGES = "SELECT, INSERT, UPDATE"
READER_PRIVILEGES = "SELECT"
# Aurora MySQL's IAM authentication plugin: the user logs in with a 15-minute token, never a password.
IAM_AUTHENTICATION = "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"


def schema_version() -> str:
    """The first 16 hex digits of the SHA-256 of schema.sql's text: the migrator reports it to
    CloudFormation (the stack's SchemaVersion output), `python -m ops verify` compares it with its own
    checkout's. Text, not bytes, so a checkout with CRLF line ends names the same schema."""
    return hashlib.sha256(SCHEMA_FILE.read_text(encoding="utf-8").encode("utf-8")).hexdigest()[:16]


def schema_statements() -> list[str]:
    """schema.sql split into statements (comment lines dropped; statements end with ';')."""
    lines = [line for line in SCHEMA_FILE.read_text().splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):  # fullmatch: "$" alone lets a final newline through
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def apply_schema(connection: pymysql.Connection, database: str) -> list[str]:
    """Create the database and tables when missing; returns the statements it ran."""
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {_identifier(database)} CHARACTER SET utf8mb4",
        f"USE {_identifier(database)}",
        *schema_statements(),
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.commit()
    return statements


def ensure_function_user(
    connection: pymysql.Connection,
    user: str,
    database: str,
    authentication: str = IAM_AUTHENTICATION,
    privileges: str = APP_PRIVILEGES,
) -> None:
    """A functions' database user: rows of one database, nothing else, and no password anywhere.

    On Aurora it authenticates with IAM tokens only (RDS Proxy's end-to-end IAM authentication).
    """
    account = f"'{_identifier(user).strip('`')}'@'%'"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE USER IF NOT EXISTS {account} {authentication}")
        cursor.execute(f"GRANT {privileges} ON {_identifier(database)}.* TO {account}")
    connection.commit()
