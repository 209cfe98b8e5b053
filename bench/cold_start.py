"""Cold start: importing each function's handler module in a fresh python3.13 process, and then the
first request of each API function.

The process sees what a Lambda execution environment sees: the function's build output as the
working directory (/var/task), the built layer's python/ directory next on sys.path (/opt/python),
then the runtime's own packages (boto3 and its dependencies, and snapshot_restore_py, nothing else:
/var/runtime), taken from this interpreter's site-packages with their bytecode; `python -S` keeps
the rest of site-packages out, as it is not on Lambda. The environment is the function's from
template.yaml plus what Lambda sets: AWS_LAMBDA_FUNCTION_NAME and LAMBDA_TASK_ROOT, the variable
Powertools' Tracer and the X-Ray SDK look at, so tracing runs as `Tracing: Active` makes it run in
Lambda (without LAMBDA_TASK_ROOT the X-Ray SDK builds a sampler with its own botocore client, ~90 ms
that Lambda never pays). Like Lambda's read-only /opt and /var/task, nothing may write bytecode
caches: the figure is for the build as `make build` ships it (precompiled, unchecked-hash .pyc
files), and a reference run shows plain `sam build` output, which has no .pyc, so that every cold
start compiles the layer's modules from source.

cold_import_ms is the median of 10 processes per function. cold_import_boto3_ms is `import boto3` alone,
measured the same way in the same run, with only the runtime's packages on the path: what any function
that uses the SDK pays, and cold_import_ratio_to_boto3 each function's cold import over it, a figure
that holds across machines of different speeds. cold_import_top5 is where that time goes:
`-X importtime` in the same layout, each module's own time summed per top-level package (the
handler's own line, `app`, includes what it runs at import, such as creating its AWS client), the
median of 3 runs. first_request_ms is what the first caller of a new execution environment waits
for, less Lambda's own start: the import, then the handler's first request (its first SQS call, to
the project's SQS emulator, for the producer; its first connection and query, to a throwaway MariaDB
with the schema, for the reader), with X-Ray tracing the request; the median of 5 processes.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.artifacts import FUNCTIONS, build_dir, function_layers
from bench.common import create_database, median, progress
from local.servers import SqsEmulator, free_port, throwaway_mariadb
from local.stack_queues import create_queues
from local.template import REPO_ROOT, Template, shared_values

PROBE = (
    "import time\n"
    "started = time.perf_counter_ns()\n"
    "import app\n"
    "print((time.perf_counter_ns() - started) / 1e6)\n"
)
# The import and the first request of an event (argv[1]) in one process; prints the time and the status.
FIRST_REQUEST_PROBE = """\
import json, sys, time
event = json.loads(sys.argv[1])

class Context:
    function_name = "bench"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:live"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 10_000

started = time.perf_counter_ns()
import app
response = app.handler(event, Context())
print(json.dumps({"ms": (time.perf_counter_ns() - started) / 1e6, "status": response["statusCode"]}))
"""
TRACE_ROOT = "1-6741a2b0-0123456789abcdef01234567"
# The API functions' first requests: the sample event, and the status that shows it did its work.
FIRST_REQUESTS = {
    "producer": ("producer-valid-post.json", 202),  # accepted once the emulator has the message
    "reader": ("reader-get-customer-not-found.json", 404),  # after a query of the (empty) database
}
DB = {
    "DB_HOST": "proxy.proxy-abc123.us-east-1.rds.amazonaws.com",
    "DB_PORT": "3306",
    "DB_NAME": shared_values().database_name,
    "DB_AUTH": "iam",
    "DB_TLS": "verify",
}
QUEUE = {"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/customer-ingest-CustomerQueue.fifo"}
DEAD_LETTER_QUEUE = {
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/customer-ingest-DeadLetterQueue.fifo",
    "POISON_RECEIVE_COUNT": str(shared_values().poison_receive_count),
}
FUNCTION_ENV = {
    "producer": QUEUE,
    "consumer": QUEUE
    | DEAD_LETTER_QUEUE
    | DB
    | {"DB_USER": "ingest_app", "RETRY_BASE_SECONDS": "5", "RETRY_MAX_SECONDS": "15"},
    "reader": DB | {"DB_USER": "ingest_app"},
    "migrator": DB
    | {
        "DB_USER": "admin",
        "APP_DB_USER": "ingest_app",
        "READER_DB_USER": "ingest_reader",
        "APP_DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-user-AbCdEf",
    },
    "console": QUEUE
    | DEAD_LETTER_QUEUE
    | DB
    | {
        "DB_HOST": "customer-ingest.cluster-abc123.us-east-1.rds.amazonaws.com",
        "DB_USER": "ingest_reader",
        "DB_CLUSTER_ID": "customer-ingest-databasecluster-abc123",
        "SIGN_IN_DOMAIN": "customer-ingest-123456789012.auth.us-east-1.amazoncognito.com",
        "CONSOLE_CLIENT_ID": "4example0client0id0abcdefgh",
    },
}
RUNTIME_PACKAGES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six.py",
    "snapshot_restore_py.py",  # SnapStart's runtime hooks
)
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def native_overlay(layer_dirs: list[Path], workdir: Path) -> Path:
    """The layers' packages with compiled extensions, as built for this machine.

    The layers are built for arm64; on another architecture their extension modules cannot load, so
    the same packages (same pinned versions) are taken from this interpreter's site-packages,
    without their bytecode caches, and put before the layers on the path.
    """
    overlay = workdir / "native"
    overlay.mkdir(exist_ok=True)
    machine = platform.machine()
    site = Path(sysconfig.get_paths()["purelib"])
    for layer_dir, extension in ((layer, so) for layer in layer_dirs for so in layer.rglob("*.so")):
        package = extension.relative_to(layer_dir).parts[0]
        if machine in extension.name or (overlay / package).exists():
            continue
        shutil.copytree(site / package, overlay / package, ignore=shutil.ignore_patterns("__pycache__"))
    return overlay


def runtime_packages(workdir: Path) -> Path:
    """What the python3.13 Lambda runtime brings: boto3 and its dependencies (links to site-packages)."""
    runtime = workdir / "runtime"
    if not runtime.exists():
        runtime.mkdir()
        site = Path(sysconfig.get_paths()["purelib"])
        for name in RUNTIME_PACKAGES:
            (runtime / name).symlink_to(site / name)
    return runtime


def layer_dirs(built: Path, logical_id: str) -> list[Path]:
    """The function's built layers' python/ directories, which Lambda merges into /opt/python."""
    return [built / layer / "python" for layer in function_layers(logical_id)]


def lambda_env(name: str, logical_id: str, built: Path) -> dict[str, str]:
    keep = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    layers = layer_dirs(built, logical_id)
    overlay = native_overlay(layers, built)
    runtime = runtime_packages(built.parent)
    path = (built / logical_id, overlay, *layers, runtime)
    return keep | {
        "PYTHONPATH": os.pathsep.join(map(str, path)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": f"customer-ingest-{logical_id}",
        "LAMBDA_TASK_ROOT": str(built / logical_id),
        "LAMBDA_RUNTIME_DIR": str(runtime),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        **shared_values().powertools_environment,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **FUNCTION_ENV[name],
    }


def import_ms(env: dict[str, str], cwd: Path, probe: str = PROBE) -> float:
    result = run_python(["-c", probe], env, cwd, "importing the handler")
    return float(result.stdout.strip().splitlines()[-1])


def run_python(
    args: list[str], env: dict[str, str], cwd: Path, what: str
) -> subprocess.CompletedProcess[str]:
    """python3.13 -S (only the layout's paths, as in Lambda) with `args`; fails naming `what` failed."""
    result = subprocess.run(
        [sys.executable, "-S", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-3000:]}")
    return result


def import_breakdown(env: dict[str, str], cwd: Path, runs: int, top: int = 5) -> dict[str, float]:
    """Milliseconds of own import time per top-level package (median of `runs`), the `top` largest."""
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        result = run_python(["-X", "importtime", "-c", "import app"], env, cwd, "importing the handler")
        totals: dict[str, float] = defaultdict(float)
        for line in result.stderr.splitlines():
            match = _IMPORTTIME.match(line)
            if match:
                totals[match.group(4).split(".")[0]] += int(match.group(1)) / 1000
        for package, ms in totals.items():
            samples[package].append(ms)
    medians = {package: median(values + [0.0] * (runs - len(values))) for package, values in samples.items()}
    largest = sorted(medians.items(), key=lambda item: item[1], reverse=True)[:top]
    return {package: round(ms, 1) for package, ms in largest}


def first_request(env: dict[str, str], cwd: Path, event: str, expected_status: int) -> float:
    result = run_python(["-c", FIRST_REQUEST_PROBE, event], env, cwd, "the first request")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    if outcome["status"] != expected_status:
        raise RuntimeError(f"the first request answered {outcome['status']}, not {expected_status}")
    return float(outcome["ms"])


@contextmanager
def api_backends(workdir: Path) -> Iterator[dict[str, dict[str, str]]]:
    """The SQS emulator with the template's queues and a MariaDB with the schema, as each API function's
    environment points at them; X-Ray's segments go to a local port nobody reads."""
    emulator = SqsEmulator(workdir / "sqs")
    emulator.start()
    try:
        queues = create_queues(emulator.endpoint, Template())
        with throwaway_mariadb("bench-first-request") as server:
            database = shared_values().database_name
            create_database(server.endpoint, database)
            tracing = {
                "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
                "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
            }
            yield {
                "producer": tracing
                | {"QUEUE_URL": queues.queue_url, "AWS_ENDPOINT_URL_SQS": emulator.endpoint},
                "reader": tracing | server.endpoint.env(database),
            }
    finally:
        emulator.stop()


def measure_first_requests(built: Path, processes: int) -> dict[str, float]:
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-first-request-") as workdir,
        api_backends(Path(workdir)) as backends,
    ):
        for name, (event_file, status) in FIRST_REQUESTS.items():
            logical_id = FUNCTIONS[name]
            function_dir = built / logical_id
            env = lambda_env(name, logical_id, built) | backends[name]
            event = (REPO_ROOT / "events" / event_file).read_text()
            results[name] = median(
                [first_request(env, function_dir, event, status) for _ in range(processes)]
            )
    return results


def source_only_copy(built: Path, workdir: Path) -> Path:
    """The build output as plain `sam build` leaves it: without the bytecode `make build` adds."""
    target = workdir / "build"
    shutil.copytree(built, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def median_import_ms(
    env: dict[str, str], cwd: Path, processes: int, warm_up: bool, probe: str = PROBE
) -> float:
    if warm_up:
        import_ms(env, cwd, probe)  # warms the file system cache, as a provisioned host would be
    return median([import_ms(env, cwd, probe) for _ in range(processes)])


def measure(built: Path, processes: int, warm_up: bool = True) -> dict[str, float]:
    return {
        name: median_import_ms(lambda_env(name, logical_id, built), built / logical_id, processes, warm_up)
        for name, logical_id in FUNCTIONS.items()
    }


def boto3_floor(built: Path, processes: int, warm_up: bool = True) -> float:
    """`import boto3` alone from the runtime's packages, in the producer's environment otherwise: what
    any function using boto3 pays."""
    env = lambda_env("producer", FUNCTIONS["producer"], built)
    env["PYTHONPATH"] = str(runtime_packages(built.parent))
    return median_import_ms(
        env, built.parent, processes, warm_up, PROBE.replace("import app", "import boto3")
    )


def run(quick: bool = False) -> dict:
    processes = 1 if quick else 10
    built = build_dir()
    cold = measure(built, processes, warm_up=not quick)
    boto3_ms = boto3_floor(built, processes, warm_up=not quick)
    progress(f"  `import boto3` alone (the runtime's, with .pyc): {boto3_ms:.0f} ms")
    top5 = {}
    for name, logical_id in FUNCTIONS.items():
        env = lambda_env(name, logical_id, built)
        top5[name] = import_breakdown(env, built / logical_id, runs=1 if quick else 3)
        breakdown = ", ".join(f"{package} {ms:.0f}" for package, ms in top5[name].items())
        progress(
            f"  {name}: {cold[name]:.0f} ms as `make build` ships it; own import time by package (ms): "
            + breakdown
        )
    first = measure_first_requests(built, processes=1 if quick else 5)
    progress(
        "  first request (import + first call): "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in first.items())
    )
    if not quick:
        with tempfile.TemporaryDirectory(prefix="bench-no-pyc-") as workdir:
            source_only = measure(source_only_copy(built, Path(workdir)), processes)
        progress(
            "  as plain `sam build` ships it (no .pyc): "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in source_only.items())
        )
    return {
        "cold_import_ms": {name: round(ms, 1) for name, ms in cold.items()},
        "cold_import_boto3_ms": round(boto3_ms, 1),
        "cold_import_ratio_to_boto3": {name: round(ms / boto3_ms, 2) for name, ms in cold.items()},
        "cold_import_top5": top5,
        "first_request_ms": {name: round(ms, 1) for name, ms in first.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
