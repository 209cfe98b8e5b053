"""Port checks, so the stack refuses clearly instead of talking to somebody else's server."""

from __future__ import annotations

import socket


class PortInUseError(RuntimeError):
    """A port the local stack wants is already taken by another process."""


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def ensure_port_free(port: int, purpose: str) -> None:
    if not is_port_free(port):
        raise PortInUseError(
            f"port {port} (wanted for {purpose}) is already in use; stop whatever listens there "
            f"(ss -ltnp 'sport = :{port}') or choose other ports (python -m local.stack --help)"
        )


def free_port() -> int:
    """A port the kernel considers free right now (for tests that need a few of them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
