"""HAProxy in TCP mode as the local stand-in for RDS Proxy: one database endpoint through a failover.

The writer is the primary server and the replica a backup, both checked with a MySQL handshake every
500 ms. When the writer goes down HAProxy cuts its sessions (so clients reconnect instead of waiting
on a dead socket) and sends new ones to the replica, which refuses writes until it is promoted; once
promoted, `route_to` makes it the primary server, as RDS Proxy follows the new Aurora writer.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from local.mariadb import find_binary
from local.ports import ensure_port_free, is_port_free
from local.replication import HEALTH_CHECK_USER

INSTALL_HINT = "install it with: apt-get install -y haproxy  (or run local/ensure-packages.sh)"

CONFIG_TEMPLATE = """\
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 1s
    timeout check 1s
    timeout client 1h
    timeout server 1h

listen database
    bind 127.0.0.1:{port}
    option mysql-check user {check_user} post-41
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions {on_marked_up}
    server {writer_name} 127.0.0.1:{writer_port} check
    server {replica_name} 127.0.0.1:{replica_port} check backup
"""


class HAProxy:
    """One haproxy process with a generated configuration; `route_to` swaps the roles in place."""

    host = "127.0.0.1"

    def __init__(self, port: int, workdir: Path):
        self.port = port
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "haproxy.cfg"
        self.log_path = self.workdir / "haproxy.log"
        self.process: subprocess.Popen | None = None

    def start(self, writer: tuple[str, int], replica: tuple[str, int], timeout: float = 10) -> None:
        """Listen on `port`, sending connections to `writer` (name, port) and to `replica` as backup."""
        binary = find_binary("haproxy", INSTALL_HINT)
        ensure_port_free(self.port, "HAProxy (the database endpoint)")
        self._write_config(writer, replica)
        self.process = self._spawn(binary, [])
        self._wait_until_listening(timeout)

    def route_to(self, writer: tuple[str, int], replica: tuple[str, int]) -> None:
        """Make `writer` the primary server: a new haproxy takes over the port and ends the old one."""
        if self.process is None:
            raise RuntimeError("HAProxy is not running")
        self._write_config(writer, replica)
        old = self.process
        # -st: the old process closes its sessions at once, so nobody stays on the demoted server.
        self.process = self._spawn(find_binary("haproxy", INSTALL_HINT), ["-st", str(old.pid)])
        old.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _write_config(self, writer: tuple[str, int], replica: tuple[str, int]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                port=self.port,
                check_user=HEALTH_CHECK_USER,
                # a writer back up takes the sessions the backup held while it was down
                on_marked_up="on-marked-up shutdown-backup-sessions",
                writer_name=writer[0],
                writer_port=writer[1],
                replica_name=replica[0],
                replica_port=replica[1],
            )
        )

    def _spawn(self, binary: str, extra: list[str]) -> subprocess.Popen:
        validate = [binary, "-c", "-q", "-f", str(self.config_path)]
        check = subprocess.run(validate, capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejected {self.config_path}:\n{check.stdout}{check.stderr}")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        # -db: stay in the foreground and print server state changes (writer DOWN/UP) to the log.
        process = subprocess.Popen(
            [binary, "-db", "-f", str(self.config_path), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return process

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited during start-up; see {self.log_path}")
            if not is_port_free(self.port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"haproxy did not listen on {self.port} within {timeout}s")
