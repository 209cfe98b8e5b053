"""HAProxy in TCP mode as the local stand-in for RDS Proxy: one database endpoint through a failover.

The writer is the primary server and the replica a backup, both checked with a MySQL handshake every
500 ms. When the writer goes down HAProxy cuts its sessions (so clients reconnect instead of waiting
on a dead socket) and sends new ones to the replica, which refuses writes until it is promoted; once
promoted, `route_to` makes it the primary server, as RDS Proxy follows the new Aurora writer.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from local.servers.process import ServerProcess, ensure_port_free, find_binary, is_port_free
from local.servers.replication import HEALTH_CHECK_USER

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

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "haproxy.cfg"
        self.process = ServerProcess("haproxy", self.workdir / "haproxy.log")

    def start(self, writer: tuple[str, int], replica: tuple[str, int], timeout: float = 10) -> None:
        """Listen on `port`, sending connections to `writer` (name, port) and to `replica` as backup."""
        ensure_port_free(self.port, "HAProxy (the database endpoint)")
        self._write_config(writer, replica)
        self._launch(timeout)

    def _launch(self, timeout: float) -> None:
        self.process.start(self._command(), lambda: not is_port_free(self.port), timeout, poll_interval=0.05)

    def restart(self, timeout: float = 10) -> None:
        """Start haproxy again on the configuration it last had (after it died)."""
        self.process.kill()  # reaps the dead process
        ensure_port_free(self.port, "HAProxy (the database endpoint)")
        self._launch(timeout)

    def route_to(self, writer: tuple[str, int], replica: tuple[str, int]) -> None:
        """Make `writer` the primary server: a new haproxy takes over the port and ends the old one."""
        self._write_config(writer, replica)
        # -st: the old process closes its sessions at once, so nobody stays on the demoted server.
        self.process.hand_over(self._command("-st", str(self.process.popen.pid)))

    def stop(self) -> None:
        self.process.stop()

    def is_running(self) -> bool:
        return self.process.is_running()

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

    def _command(self, *extra: str) -> list[str]:
        """The haproxy command line, once haproxy itself has accepted the configuration."""
        binary = find_binary("haproxy", INSTALL_HINT)
        validate = [binary, "-c", "-q", "-f", str(self.config_path)]
        check = subprocess.run(validate, capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejected {self.config_path}:\n{check.stdout}{check.stderr}")
        # -db: stay in the foreground and print server state changes (writer DOWN/UP) to the log.
        return [binary, "-db", "-f", str(self.config_path), *extra]
