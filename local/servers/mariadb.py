"""Throwaway MariaDB servers on 127.0.0.1: the local stand-in for Aurora MySQL.

Each instance owns its data directory and port, writes a binary log with GTIDs and can therefore act
as a replication primary or replica (see local.servers.replication). Commits are durable
(innodb_flush_log_at_trx_commit=1), as they are on Aurora, so a SIGKILL loses nothing committed.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from local.servers.process import MissingBinaryError, ServerProcess, ensure_port_free, find_binary, free_port
from local.servers.tls import ServerCertificates

INSTALL_HINT = "install it with: apt-get install -y mariadb-server  (or run local/ensure-packages.sh)"


def database_env(
    host: str, port: int, database: str, user: str, password: str, ca: Path | None = None
) -> dict[str, str]:
    """The handlers' database settings as the local stack gives them: password auth, and TLS verified
    against `ca` when one is given (none: plain TCP)."""
    tls = {"DB_TLS": "verify", "DB_CA_BUNDLE": str(ca)} if ca is not None else {"DB_TLS": "off"}
    return {
        "DB_HOST": host,
        "DB_PORT": str(port),
        "DB_NAME": database,
        "DB_USER": user,
        "DB_PASSWORD": password,
        "DB_AUTH": "password",
        **tls,
    }


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where a MariaDB answers and who logs in: a throwaway server's root, or a server given to the tests."""

    host: str
    port: int
    user: str = "root"
    password: str = ""
    ca: Path | None = None  # the server speaks TLS only, with a certificate for `host` from this CA

    def connect(self, database: str | None = None, **options: Any) -> pymysql.Connection[Any]:
        """A connection in autocommit mode unless `options` say otherwise; TLS, verified, to a TLS server."""
        settings: dict[str, Any] = {"autocommit": True} | options
        if self.ca is not None:
            settings.setdefault("ssl", ssl.create_default_context(cafile=str(self.ca)))
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            **settings,
        )

    def env(self, database: str) -> dict[str, str]:
        return database_env(self.host, self.port, database, self.user, self.password, self.ca)


class MariaDB:
    """One mariadbd process with its own data directory, socket and port."""

    host = "127.0.0.1"

    def __init__(
        self,
        port: int,
        datadir: Path,
        server_id: int = 1,
        name: str | None = None,
        tls: ServerCertificates | None = None,
    ) -> None:
        """`tls`: accept TLS connections only, presenting this certificate (none: plain TCP)."""
        self.port = port
        self.tls = tls
        self.datadir = Path(datadir)
        self.server_id = server_id
        self.name = name or f"mariadb-{port}"
        self.socket = self.datadir / "mysqld.sock"
        self.process = ServerProcess(self.name, self.datadir / "mariadbd.log")

    def __repr__(self) -> str:
        return f"MariaDB({self.name}, port={self.port}, datadir={self.datadir})"

    @property
    def endpoint(self) -> DatabaseEndpoint:
        """Root over TCP (root has no password in these throwaway instances), by the certificate's name
        and verifying it when the server speaks TLS."""
        if self.tls is None:
            return DatabaseEndpoint(self.host, self.port)
        return DatabaseEndpoint(self.tls.host, self.port, ca=self.tls.ca)

    def start(self, timeout: float = 30, as_replica: bool = False) -> None:
        """Start the server (initialising an empty data directory first) and wait until it answers.

        `as_replica` starts it read-only and in the replica role: crash recovery then drops
        transactions a killed writer had logged but no replica had acknowledged (MariaDB's
        semi-sync slave recovery), so it can follow the writer that replaced it.
        """
        if self.is_running():
            return
        ensure_port_free(self.port, self.name)
        if not (self.datadir / "mysql").is_dir():
            self._install()
        self.process.start(self._server_command(as_replica), self._answers, timeout)

    def stop(self, timeout: float = 30) -> None:
        """Graceful shutdown (SIGTERM): InnoDB flushes and the binary log is closed cleanly."""
        self.process.stop(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crashed host: InnoDB recovers from its redo log on the next start."""
        self.process.kill()

    def is_running(self) -> bool:
        return self.process.is_running()

    def connect(self, database: str | None = None, **options: Any) -> pymysql.Connection[Any]:
        return self.endpoint.connect(database, **options)

    def execute(self, *statements: str) -> None:
        with self.connect() as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def query(self, statement: str, args: tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
        with self.connect(cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def _install(self, attempts: int = 3) -> None:
        command = [
            find_binary("mariadb-install-db", INSTALL_HINT),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *self._user_option(),
        ]
        # The bootstrap server it runs has been seen to fail now and then on a loaded machine, with
        # nothing in its output; a clean retry succeeds.
        for attempt in range(1, attempts + 1):
            shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir.mkdir(parents=True)
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode == 0:
                return
            if attempt == attempts:
                output = result.stdout + result.stderr
                raise RuntimeError(
                    f"mariadb-install-db failed {attempts} times for {self.datadir}:\n{output}"
                )
            time.sleep(1)

    def _server_command(self, as_replica: bool) -> list[str]:
        return [
            find_binary("mariadbd", INSTALL_HINT),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--pid-file={self.datadir / 'mariadbd.pid'}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--default-time-zone=+00:00",
            f"--server-id={self.server_id}",
            "--log-bin=binlog",
            "--binlog-format=ROW",
            "--log-slave-updates=ON",  # a promoted replica's binlog then holds every transaction
            "--gtid-strict-mode=ON",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=1",
            "--sync-binlog=1",
            "--max-connections=300",
            "--skip-slave-start",  # replication is configured explicitly by local.servers.replication
            # Lossless semi-sync on every instance, whatever its role: a commit is acknowledged only
            # once the replica has it, so a promoted replica holds every acknowledged row, as on
            # Aurora. With no replica connected the writer does not wait (wait_no_slave=OFF).
            "--rpl-semi-sync-master-enabled=ON",
            "--rpl-semi-sync-slave-enabled=ON",
            "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
            "--rpl-semi-sync-master-wait-no-slave=OFF",
            "--rpl-semi-sync-master-timeout=2000",
            f"--read-only={'ON' if as_replica else 'OFF'}",
            f"--init-rpl-role={'SLAVE' if as_replica else 'MASTER'}",
            *self._tls_options(),
            *self._user_option(),
        ]

    def _tls_options(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            f"--ssl-ca={self.tls.ca}",
            f"--ssl-cert={self.tls.certificate}",
            f"--ssl-key={self.tls.key}",
            "--require-secure-transport=ON",
        ]

    @staticmethod
    def _user_option() -> list[str]:
        # mariadbd refuses to run as root unless told to; elsewhere it runs as the calling user.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _answers(self) -> bool:
        try:
            self.connect(connect_timeout=1).close()
        except pymysql.err.OperationalError:
            return False
        return True


@contextmanager
def throwaway_mariadb(
    name: str, attempts: int = 3, tls: ServerCertificates | None = None
) -> Iterator[MariaDB]:
    """A MariaDB on a free port with its own data directory, removed afterwards (never a shared server);
    with `tls`, it accepts TLS connections only."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    try:
        for attempt in range(1, attempts + 1):
            # Another process may take the free port before the server binds it: draw another.
            server = MariaDB(port=free_port(), datadir=workdir / "data", name=name, tls=tls)
            try:
                server.start()
                break
            except MissingBinaryError:
                raise
            except RuntimeError:  # the port was refused, or the server exited failing to bind it
                server.kill()
                if attempt == attempts:
                    raise
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
