"""Cold start: the time to import each function's handler module in a fresh python3.13 process.

The process sees what a Lambda execution environment sees: the function's build output as the
working directory (/var/task), the built layer's python/ directory next on sys.path (/opt/python),
then the runtime's own packages (boto3 and its dependencies, nothing else: /var/runtime), taken
from this interpreter's site-packages with their bytecode; `python -S` keeps the rest of
site-packages out, as it is not on Lambda. The environment is the
function's from template.yaml with AWS_LAMBDA_FUNCTION_NAME set, so Powertools' Tracer is active
(Tracing: Active). Like Lambda's read-only /opt and /var/task, nothing may write bytecode caches:
the figure is for the build as `make build` ships it (precompiled, unchecked-hash .pyc files), and a
reference run shows plain `sam build` output, which has no .pyc, so that every cold start compiles
the layer's modules from source. The figure is the median of 10 processes per function; one more
run with `-X importtime` says which packages the time goes to.
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
from pathlib import Path

from bench.artifacts import FUNCTIONS, LAYER, build_dir
from bench.common import median, progress
from local.template import shared_values

PROBE = (
    "import time\n"
    "started = time.perf_counter_ns()\n"
    "import app\n"
    "print((time.perf_counter_ns() - started) / 1e6)\n"
)
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
}
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def native_overlay(layer_dir: Path, workdir: Path) -> Path:
    """The layer's packages with compiled extensions, as built for this machine.

    The layer is built for arm64; on another architecture its extension modules cannot load, so
    the same packages (same pinned versions) are taken from this interpreter's site-packages,
    without their bytecode caches, and put before the layer on the path.
    """
    overlay = workdir / "native"
    overlay.mkdir(exist_ok=True)
    machine = platform.machine()
    site = Path(sysconfig.get_paths()["purelib"])
    for extension in layer_dir.rglob("*.so"):
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


def lambda_env(name: str, logical_id: str, function_dir: Path, layer_dir: Path) -> dict[str, str]:
    keep = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    workdir = layer_dir.parent.parent
    overlay = native_overlay(layer_dir, workdir)
    runtime = runtime_packages(workdir.parent)
    return keep | {
        "PYTHONPATH": os.pathsep.join((str(function_dir), str(overlay), str(layer_dir), str(runtime))),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_LAMBDA_FUNCTION_NAME": f"customer-ingest-{logical_id}",
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


def import_ms(env: dict[str, str], cwd: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-S", "-c", PROBE], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing the handler failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def import_breakdown(env: dict[str, str], cwd: Path, top: int = 5) -> list[tuple[str, float]]:
    """Milliseconds of own import time per top-level package, largest first."""
    result = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-c", "import app"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: dict[str, float] = defaultdict(float)
    for line in result.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            totals[match.group(4).split(".")[0]] += int(match.group(1)) / 1000
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)[:top]


def source_only_copy(built: Path, workdir: Path) -> Path:
    """The build output as plain `sam build` leaves it: without the bytecode `make build` adds."""
    target = workdir / "build"
    shutil.copytree(built, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def measure(built: Path, processes: int, warm_up: bool = True) -> dict[str, float]:
    results = {}
    for name, logical_id in FUNCTIONS.items():
        function_dir, layer_dir = built / logical_id, built / LAYER / "python"
        env = lambda_env(name, logical_id, function_dir, layer_dir)
        if warm_up:
            import_ms(env, function_dir)  # warms the file system cache, as a provisioned host would be
        results[name] = median([import_ms(env, function_dir) for _ in range(processes)])
    return results


def boto3_floor(built: Path) -> float:
    """`import boto3` alone from the runtime's packages: what any function using boto3 pays."""
    env = lambda_env(
        "producer", FUNCTIONS["producer"], built / FUNCTIONS["producer"], built / LAYER / "python"
    )
    runtime = runtime_packages(built.parent)
    env["PYTHONPATH"] = str(runtime)
    probe = PROBE.replace("import app", "import boto3")
    return median(
        [
            float(
                subprocess.run(
                    [sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(5)
        ]
    )


def run(quick: bool = False) -> dict:
    processes = 1 if quick else 10
    built = build_dir()
    cold = measure(built, processes, warm_up=not quick)
    for name, logical_id in ({} if quick else FUNCTIONS).items():
        env = lambda_env(name, logical_id, built / logical_id, built / LAYER / "python")
        breakdown = ", ".join(
            f"{package} {ms:.0f}" for package, ms in import_breakdown(env, built / logical_id)
        )
        progress(
            f"  {name}: {cold[name]:.0f} ms as `make build` ships it; own import time by package (ms): "
            + breakdown
        )
    if not quick:
        progress(
            f"  for reference, `import boto3` alone (the runtime's, with .pyc): {boto3_floor(built):.0f} ms"
        )
        with tempfile.TemporaryDirectory(prefix="bench-no-pyc-") as workdir:
            source_only = measure(source_only_copy(built, Path(workdir)), processes)
        progress(
            "  as plain `sam build` ships it (no .pyc): "
            + ", ".join(f"{name} {ms:.0f} ms" for name, ms in source_only.items())
        )
    return {"cold_import_ms": {name: round(ms, 1) for name, ms in cold.items()}}


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
