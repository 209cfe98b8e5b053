"""`sam build` of template.yaml into a temporary directory, once per benchmark run."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bench.common import progress
from local.template import REPO_ROOT, TEMPLATE_PATH, load_template

FUNCTIONS = {
    "producer": "ProducerFunction",
    "consumer": "ConsumerFunction",
    "reader": "ReaderFunction",
    "migrator": "SchemaMigratorFunction",
    "console": "ConsoleFunction",
}
LAYER = "SharedLayer"
# The Makefile's build target runs the same command on .aws-sam/build.
PRECOMPILE = ("-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash")


@dataclass(frozen=True)
class Build:
    process: subprocess.Popen[str]
    target: Path


_build: Build | None = None


def start_build() -> Build:
    """Start `sam build` in the background (the quick run overlaps it with the other parts)."""
    global _build
    if _build is not None:
        return _build
    sam = Path(sys.executable).with_name("sam")
    if not sam.exists():
        sam = Path(shutil.which("sam") or "sam")
    workdir = Path(tempfile.mkdtemp(prefix="bench-sam-build-"))
    atexit.register(shutil.rmtree, workdir, True)
    target = workdir / "build"
    # sam looks for python3.13 on PATH: the virtual environment's bin has it.
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    progress(f"sam build into {target}")
    process = subprocess.Popen(
        [str(sam), "build", "--build-dir", str(target), "--template", str(TEMPLATE_PATH)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _build = Build(process, target)
    return _build


def function_layers(logical_id: str) -> tuple[str, ...]:
    """The layers a function runs with, in Lambda's order: the Globals' first, then its own (SAM adds
    a function's list to the Globals' one)."""
    template = load_template(TEMPLATE_PATH)
    layers = [
        *template["Globals"]["Function"].get("Layers", []),
        *template["Resources"][logical_id]["Properties"].get("Layers", []),
    ]
    return tuple(layer["Ref"] for layer in layers)


@cache
def build_dir() -> Path:
    """The build output: one directory per function and one for the layer (its content under python/)."""
    build = start_build()
    output, _ = build.process.communicate()
    if build.process.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{output[-4000:]}")
    # As `make build` does: ship bytecode, so a cold start does not compile the layer from source.
    subprocess.run([sys.executable, *PRECOMPILE, str(build.target)], check=True)
    return build.target


def tree_bytes(path: Path) -> int:
    """Unzipped size: the sum of the regular files' sizes."""
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())
