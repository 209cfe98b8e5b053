"""Restarts the local stand-ins for managed services when they die, as the services heal on AWS.

HAProxy (for RDS Proxy), the SQS emulator (for SQS) and the MariaDB instances (for Aurora, which
restarts a crashed instance) are checked every CHECK_INTERVAL_S; one found dead is started again,
and both events are logged. A deliberate outage (the drill's) pauses the supervision of what it
stops, so supervision never undoes it, and resumes it once the outage is over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("local.supervisor")

CHECK_INTERVAL_S = 0.5
RETRY_AFTER_FAILURE_S = 2.0


@dataclass
class _Service:
    name: str
    is_running: Callable[[], bool]
    restart: Callable[[], None]
    paused: bool = False
    restarts: int = 0
    retry_at: float = 0.0  # monotonic time before which a failed restart is not tried again
    # Held while the service is checked or restarted, so a pause waits for a restart in progress.
    lock: threading.Lock = field(default_factory=threading.Lock)


class Supervisor:
    def __init__(self) -> None:
        self._services: dict[str, _Service] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, name: str, is_running: Callable[[], bool], restart: Callable[[], None]) -> None:
        """Restart `name` with `restart()` whenever `is_running()` says it died."""
        self._services[name] = _Service(name, is_running, restart)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()
        log.info("supervising %s: restarted within seconds if one dies", ", ".join(self._services))

    def stop(self) -> None:
        """Stop supervising (before the stack stops what it supervises)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def restarts(self, name: str) -> int:
        """How many times `name` was found dead and started again."""
        return self._services[name].restarts

    def pause(self, *names: str) -> None:
        """Leave `names` down on purpose (a drill's outage) until `resume`; waits for a restart under way."""
        for name in names:
            service = self._services[name]
            with service.lock:
                service.paused = True

    def resume(self, *names: str) -> None:
        for name in names:
            service = self._services[name]
            with service.lock:
                service.paused = False

    @contextmanager
    def paused(self, *names: str) -> Iterator[None]:
        self.pause(*names)
        try:
            yield
        finally:
            self.resume(*names)

    def _run(self) -> None:
        while not self._stopping.wait(CHECK_INTERVAL_S):
            for service in self._services.values():
                if self._stopping.is_set():
                    return
                with service.lock:
                    if not service.paused and time.monotonic() >= service.retry_at:
                        self._heal(service)

    def _heal(self, service: _Service) -> None:
        if service.is_running():
            return
        started = time.monotonic()
        log.warning("%s died; restarting it", service.name)
        try:
            service.restart()
        except Exception as error:
            service.retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
            log.error(
                "%s did not restart (%s); trying again in %.0f s", service.name, error, RETRY_AFTER_FAILURE_S
            )
            return
        service.restarts += 1
        log.warning("%s is back after %.1f s", service.name, time.monotonic() - started)
