"""Throwaway MariaDB servers on 127.0.0.1: the local stand-in for Aurora MySQL.

Each instance owns its data directory and port, writes a binary log with GTIDs and can therefore act
as a replication primary or replica (see local.replication). Commits are durable
(innodb_flush_log_at_trx_commit=1), as they are on Aurora, so a SIGKILL loses nothing committed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pymysql

from local.ports import ensure_port_free

INSTALL_HINT = "install it with: apt-get install -y mariadb-server  (or run local/ensure-packages.sh)"
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


class MissingBinaryError(RuntimeError):
    """A server binary the local stack needs is not installed."""


def find_binary(name: str, hint: str = INSTALL_HINT) -> str:
    """Absolute path of `name`, looking in PATH and the sbin directories PATH often lacks."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SEARCH_DIRS))
    if found is None:
        raise MissingBinaryError(f"{name} not found; {hint}")
    return found


class MariaDB:
    """One mariadbd process with its own data directory, socket and port."""

    host = "127.0.0.1"

    def __init__(self, port: int, datadir: Path, server_id: int = 1, name: str | None = None):
        self.port = port
        self.datadir = Path(datadir)
        self.server_id = server_id
        self.name = name or f"mariadb-{port}"
        self.socket = self.datadir / "mysqld.sock"
        self.log_path = self.datadir / "mariadbd.log"
        self.process: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"MariaDB({self.name}, port={self.port}, datadir={self.datadir})"

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
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            self._server_command(as_replica),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal reaches the stack, which stops us in order
        )
        log.close()
        self._wait_until_ready(timeout)

    def stop(self, timeout: float = 30) -> None:
        """Graceful shutdown (SIGTERM): InnoDB flushes and the binary log is closed cleanly."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crashed host: InnoDB recovers from its redo log on the next start."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def connect(self, database: str | None = None, **kwargs) -> pymysql.connections.Connection:
        """A root connection over TCP (root has no password in these throwaway instances)."""
        options = {"host": self.host, "port": self.port, "user": "root", "password": "", "autocommit": True}
        options.update(kwargs)
        return pymysql.connect(database=database, **options)

    def execute(self, *statements: str) -> None:
        with self.connect() as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def query(self, statement: str, args=None) -> list[dict]:
        with self.connect(cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def remove_datadir(self) -> None:
        """Delete the data directory; only valid once the server is down."""
        if self.is_running():
            raise RuntimeError(f"{self.name} is still running")
        shutil.rmtree(self.datadir, ignore_errors=True)

    def _install(self, attempts: int = 3) -> None:
        command = [
            find_binary("mariadb-install-db"),
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
            find_binary("mariadbd"),
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
            "--skip-slave-start",  # replication is configured explicitly by local.replication
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
            *self._user_option(),
        ]

    @staticmethod
    def _user_option() -> list[str]:
        # mariadbd refuses to run as root unless told to; elsewhere it runs as the calling user.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                tail = self._log_tail()
                raise RuntimeError(f"{self.name} exited during start-up; see {self.log_path}:\n{tail}")
            try:
                self.connect(connect_timeout=1).close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"{self.name} did not accept connections within {timeout}s; see {self.log_path}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
