"""A server as a child process: its port, its binary, its log file, start-up, readiness and shutdown.

MariaDB, HAProxy and the SQS emulator all run this way, so each is started in its own session
(Ctrl-C in the terminal reaches the stack, which then stops them in order), writes to its own log
file, and stops with SIGTERM, then SIGKILL if it does not exit in time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


class PortInUseError(RuntimeError):
    """A port the local stack wants is already taken by another process."""


class MissingBinaryError(RuntimeError):
    """A server binary the local stack needs is not installed."""


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def ensure_port_free(port: int, purpose: str) -> None:
    """Refuse clearly instead of talking to somebody else's server."""
    if not is_port_free(port):
        raise PortInUseError(
            f"port {port} (wanted for {purpose}) is already in use; stop whatever listens there "
            f"(ss -ltnp 'sport = :{port}') or choose other ports (python -m local.demo --help)"
        )


def free_port() -> int:
    """A port the kernel considers free right now (another process may take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_binary(name: str, hint: str) -> str:
    """Absolute path of `name`, looking in PATH and the sbin directories PATH often lacks."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SEARCH_DIRS))
    if found is None:
        raise MissingBinaryError(f"{name} not found; {hint}")
    return found


class ServerProcess:
    """One child process serving something; `start` returns once `is_ready` says it serves."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        """The running process (for signals the lifecycle does not cover)."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._popen

    def start(
        self,
        command: list[str],
        is_ready: Callable[[], bool],
        timeout: float,
        poll_interval: float = 0.1,
        cwd: Path | None = None,
    ) -> None:
        """Start `command` and wait until `is_ready()`; a process that exits or stays unready is an error."""
        self._popen = self._spawn(command, cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RuntimeError(
                    f"{self.name} exited during start-up; see {self.log_path}:\n{self.log_tail()}"
                )
            if is_ready():
                return
            time.sleep(poll_interval)
        self.kill()
        raise TimeoutError(f"{self.name} was not ready within {timeout}s; see {self.log_path}")

    def hand_over(self, command: list[str], timeout: float = 10) -> None:
        """Start `command` as the successor of the running process, which it ends (haproxy -st)."""
        predecessor = self.popen
        self._popen = self._spawn(command, cwd=None)
        predecessor.wait(timeout)

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM, so the server shuts down cleanly; SIGKILL if it has not exited within `timeout`."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        self._popen = None

    def kill(self) -> None:
        """SIGKILL, as a crashed host."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()
        self._popen = None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _spawn(self, command: list[str], cwd: Path | None) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd,
            )
