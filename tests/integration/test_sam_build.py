"""`sam build` of the real template: the shared layer carries its dependencies and the ingest package,
the console's layer the ingest_console package alone, and every function its handler. Cross-builds
arm64 wheels from PyPI (no Docker), so it needs the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {
    "ProducerFunction": "producer",
    "ConsumerFunction": "consumer",
    "ReaderFunction": "reader",
    "SchemaMigratorFunction": "migrator",
    "ConsoleFunction": "console",
}

pytestmark = pytest.mark.slow


def _build_environment() -> dict[str, str]:
    """SAM's python3.13 builder looks for `python3.13` on PATH: put this interpreter's directory (the
    virtual environment's bin, holding python3.13 and sam) first."""
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = _build_environment()
    # Both come with the virtual environment (aws-sam-cli is a locked dev tool): missing is a broken venv.
    sam = shutil.which("sam", path=env["PATH"])
    assert sam is not None, "aws-sam-cli is not installed: run make venv"
    assert shutil.which("python3.13", path=env["PATH"]), "sam build needs python3.13 on PATH"
    build = tmp_path_factory.mktemp("sam-build") / "build"
    result = subprocess.run(
        [sam, "build", "--template-file", str(ROOT / "template.yaml"), "--build-dir", str(build)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return build


@pytest.mark.parametrize(
    "path",
    [
        "python/pymysql",
        "python/aws_lambda_powertools",
        "python/pydantic",
        "python/ingest/schema.sql",
        "python/ingest/certs/amazon-trust-roots.pem",
        "python/ingest/certs/amazon-rds-roots.pem",
    ],
)
def test_layer_contains(build_dir: Path, path: str):
    assert (build_dir / "SharedLayer" / path).exists()


def test_layer_adds_only_the_ingest_package_to_its_dependencies(build_dir: Path):
    # GIVEN what pip installed into the built layer, by its wheels' RECORD files
    python = build_dir / "SharedLayer" / "python"
    installed = {
        Path(line.split(",", 1)[0]).parts[0]
        for record in python.glob("*.dist-info/RECORD")
        for line in record.read_text().splitlines()
        if line
    }
    # WHEN the layer's source directory is copied beside them
    copied = {entry.name for entry in python.iterdir()} - installed
    # THEN it brings the package and its two small build manifests (SAM copies the directory whole and
    # has no exclude list of its own), no packaging leftovers such as *.egg-info or build/
    assert copied == {"ingest", "pyproject.toml", "requirements.txt"}


def test_the_console_layer_holds_its_package_alone(build_dir: Path):
    # GIVEN the console's built layer
    python = build_dir / "ConsoleLayer" / "python"
    # THEN it is the ingest_console package (and its project file), nothing installed: the shared layer,
    # beside it in the console function, brings every dependency
    assert {entry.name for entry in python.iterdir()} == {"ingest_console", "pyproject.toml"}
    assert (python / "ingest_console" / "aws.py").is_file()
    assert not (build_dir / "SharedLayer" / "python" / "ingest_console").exists()


def test_layer_holds_the_arm64_build_of_compiled_dependencies(build_dir: Path):
    # The functions run on arm64: the build takes the locked versions' aarch64 wheels, not this machine's.
    (extension,) = (build_dir / "SharedLayer" / "python" / "pydantic_core").glob("*.so")
    header = extension.read_bytes()[:20]
    elf_machine = int.from_bytes(header[18:20], "little")
    assert header[:4] == b"\x7fELF"
    assert elf_machine == 183  # EM_AARCH64


def test_layer_is_not_nested_twice(build_dir: Path):
    # BuildMethod python3.13 adds python/ itself; a python/ of our own would end up as python/python/.
    assert not (build_dir / "SharedLayer" / "python" / "python").exists()


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_contains_its_handler(build_dir: Path, logical_id: str):
    built = build_dir / logical_id / "app.py"
    assert built.is_file()
    source = ROOT / "functions" / FUNCTIONS[logical_id] / "app.py"
    assert built.read_bytes() == source.read_bytes()


def test_the_console_function_carries_its_page(build_dir: Path):
    # The page and its files are served by the console function from its own directory.
    for source in (ROOT / "functions" / "console" / "static").iterdir():
        assert (build_dir / "ConsoleFunction" / "static" / source.name).read_bytes() == source.read_bytes()


def test_built_template_points_at_the_built_code(build_dir: Path):
    built = (build_dir / "template.yaml").read_text()
    for logical_id in (*FUNCTIONS, "SharedLayer", "ConsoleLayer"):
        assert f"CodeUri: {logical_id}" in built or f"ContentUri: {logical_id}" in built
