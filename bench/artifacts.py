"""`sam build` of template.yaml into a temporary directory, once per benchmark run."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

from bench.common import progress
from local.template import REPO_ROOT, TEMPLATE_PATH

FUNCTIONS = {
    "producer": "ProducerFunction",
    "consumer": "ConsumerFunction",
    "reader": "ReaderFunction",
    "migrator": "SchemaMigratorFunction",
}
LAYER = "DbLayer"
# The Makefile's build target runs the same command on .aws-sam/build.
PRECOMPILE = ("-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")


_build: subprocess.Popen | None = None
_target: Path | None = None


def start_build() -> None:
    """Start `sam build` in the background (the quick run overlaps it with the other parts)."""
    global _build, _target
    if _build is not None:
        return
    sam = Path(sys.executable).with_name("sam")
    if not sam.exists():
        sam = Path(shutil.which("sam") or "sam")
    workdir = Path(tempfile.mkdtemp(prefix="bench-sam-build-"))
    atexit.register(shutil.rmtree, workdir, True)
    _target = workdir / "build"
    # sam looks for python3.13 on PATH: the virtual environment's bin has it.
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    progress(f"sam build into {_target}")
    _build = subprocess.Popen(
        [str(sam), "build", "--build-dir", str(_target), "--template", str(TEMPLATE_PATH)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@cache
def build_dir() -> Path:
    """The build output: one directory per function and one for the layer (its content under python/)."""
    start_build()
    output, _ = _build.communicate()
    if _build.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{output[-4000:]}")
    # As `make build` does: ship bytecode, so a cold start does not compile the layer from source.
    subprocess.run([sys.executable, *PRECOMPILE, str(_target)], check=True)
    return _target


def tree_bytes(path: Path) -> int:
    """Unzipped size: the sum of the regular files' sizes."""
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())
