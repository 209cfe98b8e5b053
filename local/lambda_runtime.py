"""Just enough of the Lambda runtime to call the real handlers: the context object and worker processes.

A worker process is one "execution environment": it sets the function's environment variables
before loading functions/<name>/app.py (the handlers read their configuration at import time, as in
Lambda) and then serves invocations one at a time over a pipe. The event source mapping emulator
can SIGKILL a worker at a chosen moment, which is how the drill crashes a consumer.

A worker that dies (killed from outside, as a crashed environment) fails only the invocation it was
serving; its owner replaces it, as Lambda replaces a crashed execution environment.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType
from typing import Any

from local.template import LOCAL_ACCOUNT, LOCAL_REGION, REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"

log = logging.getLogger("local.lambda")

Handler = Callable[[dict[str, Any], "LambdaContext"], Any]


@dataclass
class LambdaContext:
    """The attributes and method of the context object the Python runtime passes to a handler."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_s: float = 30
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{os.getpid()}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_s - (time.monotonic() - self.started)) * 1000), 0)


def load_function_module(function: str) -> ModuleType:
    """Load functions/<function>/app.py afresh, as a new execution environment would.

    It is loaded by file path, as its own module (functions.<function>.app), so handlers of several
    functions live side by side in one process; it reads the environment as it is now.
    """
    path = FUNCTIONS_DIR / function / "app.py"
    module_name = f"functions.{function}.app"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # what pickling and dataclasses look a module up by
    spec.loader.exec_module(module)
    return module


def _serve(
    channel: Connection, function: str, environment: dict[str, str], function_name: str, timeout_s: float
) -> None:
    os.environ.update(environment)
    handler: Handler = load_function_module(function).handler
    channel.send(("ready", None))
    while True:
        event, request_id = channel.recv()
        context = LambdaContext(function_name=function_name, timeout_s=timeout_s, aws_request_id=request_id)
        try:
            channel.send(("ok", handler(event, context)))
        except Exception as error:
            # Lambda reports an unhandled exception as a failed invocation: the whole batch is retried.
            traceback.print_exc()
            channel.send(("error", f"{type(error).__name__}: {error}"))


class InvocationFailed(RuntimeError):
    """The handler raised, timed out, or its process died."""


class InvocationTimedOut(InvocationFailed):
    """The handler ran past the function's timeout; its environment was discarded."""


class EnvironmentGone(InvocationFailed):
    """The environment had died before the event reached it: the handler never saw the event."""


class WorkerProcess:
    """One execution environment of functions/<function>/app.py's handler."""

    def __init__(
        self, function: str, environment: dict[str, str], function_name: str, timeout_s: float, log: Path
    ) -> None:
        self.function = function
        self.environment = environment
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.log = log
        self.process: BaseProcess | None = None
        self.channel: Connection | None = None
        self.ready = False  # its handler module is loaded: it serves invocations

    def start(self, ready_timeout: float = 60) -> None:
        self.spawn()
        self.wait_until_ready(ready_timeout)

    def spawn(self) -> None:
        """Start the process (the cold start); wait_until_ready then waits for its handler import."""
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, like a new environment
        parent, child = spawn.Pipe()
        process = spawn.Process(
            target=_run_logged,
            args=(child, self.function, self.environment, self.function_name, self.timeout_s, str(self.log)),
            daemon=True,
        )
        process.start()
        child.close()
        self.process, self.channel = process, parent

    def wait_until_ready(self, ready_timeout: float = 60) -> None:
        parent = self._channel()
        if not parent.poll(ready_timeout):
            self.kill()
            raise InvocationFailed(f"{self.function_name} did not initialise within {ready_timeout}s")
        try:
            parent.recv()
        except EOFError:
            self.kill()
            raise InvocationFailed(f"{self.function_name} failed to initialise; see {self.log}") from None
        self.ready = True

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        """Run the handler on `event` in this environment, which must be running."""
        channel = self._channel()
        try:
            channel.send((event, request_id or str(uuid.uuid4())))
        except OSError:  # BrokenPipeError, ConnectionResetError: nobody reads the other end
            self.kill()
            raise EnvironmentGone(f"{self.function_name} process had died; see {self.log}") from None
        try:
            if not channel.poll(self.timeout_s):
                self.kill()  # Lambda ends a timed-out invocation by discarding its environment
                raise InvocationTimedOut(f"{self.function_name} timed out after {self.timeout_s}s")
            status, value = channel.recv()
        except (EOFError, OSError):
            self.kill()
            raise InvocationFailed(f"{self.function_name} process died; see {self.log}") from None
        if status == "error":
            raise InvocationFailed(value)
        return value

    @property
    def pid(self) -> int | None:
        """The process id of the running environment (None when there is none)."""
        process = self.process  # read once: another thread may discard it meanwhile
        return process.pid if process is not None else None

    def is_alive(self) -> bool:
        """True while the environment's process runs (False once it died or was discarded)."""
        process = self.process
        return process is not None and process.is_alive()

    def _channel(self) -> Connection:
        if self.channel is None:
            raise InvocationFailed(f"{self.function_name} has no running environment")
        return self.channel

    def kill(self) -> None:
        """SIGKILL the environment; the next invoke starts a fresh one."""
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        if self.process is not None:
            self.process.join()
        if self.channel is not None:
            self.channel.close()
        self.process = None
        self.channel = None
        self.ready = False


def _run_logged(
    channel: Connection,
    function: str,
    environment: dict[str, str],
    function_name: str,
    timeout_s: float,
    log_path: str,
) -> None:
    # The function's stdout/stderr (Powertools JSON logs) go to its own log file, like CloudWatch.
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    sys.stdout = sys.stderr = log
    _serve(channel, function, environment, function_name, timeout_s)


class FunctionPool:
    """Execution environments of one function, each serving one invocation at a time, as in Lambda.

    The handlers keep per-environment state (a database connection, Powertools' current event), so
    concurrent requests must not share one. The pool starts `initial` environments and adds one (a cold
    start) when a request finds all of them busy, up to `maximum`; meanwhile requests wait for one, first
    come first served. An environment that died (crashed, killed, or discarded after a timeout) never
    serves again: only the invocation it was running fails, and its replacement is an ordinary cold
    start, one at a time, so a wave of crashes cannot start a stampede of interpreters.
    """

    def __init__(
        self,
        function: str,
        environment: dict[str, str],
        function_name: str,
        timeout_s: float,
        logdir: Path,
        initial: int = 2,
        maximum: int = 32,
    ):
        self._new = lambda number: WorkerProcess(
            function, environment, function_name, timeout_s, logdir / f"{function_name}-{number}.log"
        )
        self.function_name = function_name
        self.initial = initial
        self.maximum = maximum
        self._idle: list[WorkerProcess] = []
        # Each waiting request's turn: it gets a worker, or None to try again (an environment was lost).
        self._waiting: collections.deque[queue.SimpleQueue[WorkerProcess | None]] = collections.deque()
        self._all: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self._starting = False
        self._started = 0  # environments created so far, to number their log files

    def start(self) -> None:
        workers = [self._add() for _ in range(self.initial)]
        for worker in workers:
            worker.spawn()
        for worker in workers:
            worker.wait_until_ready()
        self._idle.extend(workers)

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        while True:
            worker = self._acquire()
            try:
                return worker.invoke(event, context.aws_request_id)
            except EnvironmentGone:
                continue  # it died while idle: the event never reached it, so another one serves it
            finally:
                self._release(worker)

    def stop(self) -> None:
        with self._lock:
            for worker in self._all:
                worker.kill()

    def pids(self) -> tuple[list[int], list[int]]:
        """The process ids of the idle and of the busy environments."""
        with self._lock:
            idle = [pid for worker in self._idle if (pid := worker.pid) is not None]
            busy = [
                pid for worker in self._all if worker not in self._idle and (pid := worker.pid) is not None
            ]
        return idle, busy

    def _acquire(self) -> WorkerProcess:
        while True:
            with self._lock:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.is_alive():
                        return worker
                    self._discard(worker)  # it died while idle
                # One cold start at a time: a burst must not start dozens of interpreters at once.
                cold = None
                if not self._starting and len(self._all) < self.maximum:
                    cold = self._add()
                    self._starting = True
                else:
                    turn: queue.SimpleQueue[WorkerProcess | None] = queue.SimpleQueue()
                    self._waiting.append(turn)
            if cold is not None:
                return self._cold_start(cold)
            served = turn.get()
            if served is not None:
                return served

    def _cold_start(self, worker: WorkerProcess) -> WorkerProcess:
        try:
            worker.start()
        finally:
            with self._lock:
                self._starting = False
            if not worker.is_alive():  # it failed to start: discarded, a waiting request tries again
                self._release(worker)
        return worker

    def _release(self, worker: WorkerProcess) -> None:
        with self._lock:
            if not worker.is_alive():
                self._discard(worker)
                self._wake_one()
            elif self._waiting:
                self._waiting.popleft().put(worker)  # the longest waiting request goes next
            else:
                self._idle.append(worker)

    def _wake_one(self) -> None:
        """Let the longest waiting request try again (called with the lock held)."""
        if self._waiting:
            self._waiting.popleft().put(None)

    def _discard(self, worker: WorkerProcess) -> None:
        worker.kill()  # reaps the process and closes its pipe
        self._all.remove(worker)
        log.warning("%s: an environment is gone (crashed or timed out)", self.function_name)

    def _add(self) -> WorkerProcess:
        worker = self._new(self._started)
        self._started += 1
        self._all.append(worker)
        return worker
