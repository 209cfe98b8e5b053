"""The shared layer ships the pipeline only: nothing in it imports the demo console's package
(ingest_console, the console function's own layer), and no pipeline function loads any of it at start.

A console-only change then publishes no new shared layer, so a deploy does not run the schema
migrator again (SchemaMigration's SchemaLayerVersion is the shared layer's version) and the pipeline's
cold starts do not pay for the console's models.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cold_start import FUNCTION_ENV

ROOT = Path(__file__).resolve().parents[2]
SHARED_PACKAGE = ROOT / "layers" / "shared" / "ingest"
CONSOLE_PACKAGE = "ingest_console"
PIPELINE_FUNCTIONS = ("producer", "consumer", "reader", "migrator")
# A new execution environment: load functions/<name>/app.py as the local Lambda runtime does, then list
# every module the interpreter holds.
LOAD_AND_LIST = """\
import json, sys
from local.lambda_runtime import load_function_module
load_function_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def imported_modules(source: Path) -> set[str]:
    """Every module `source` imports, at the top or inside a function, by its absolute name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_console_module(name: str) -> bool:
    return name == CONSOLE_PACKAGE or name.startswith((f"{CONSOLE_PACKAGE}.", "ingest.console"))


def modules_at_start(function: str) -> set[str]:
    """The modules a fresh interpreter holds once functions/<function>/app.py is loaded with its
    environment (the benchmark's, which is the template's with example endpoints)."""
    env = os.environ | {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **FUNCTION_ENV[function],
    }
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_LIST, function],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_no_module_of_the_shared_layer_imports_the_console_package():
    # GIVEN every module of the shared layer's package
    sources = sorted(SHARED_PACKAGE.rglob("*.py"))
    assert SHARED_PACKAGE / "repository.py" in sources
    # WHEN their imports are read THEN none is of the console's package, and none of them is a console module
    offending = {
        str(source.relative_to(ROOT)): sorted(filter(is_console_module, imported_modules(source)))
        for source in sources
    }
    assert {path: names for path, names in offending.items() if names} == {}
    assert not [source for source in sources if "console" in source.stem]


def test_the_import_walk_sees_an_import_of_the_console_package(tmp_path: Path):
    # GIVEN a module that imports the console's package only inside a function
    module = tmp_path / "module.py"
    module.write_text("def later():\n    from ingest_console.ledger import run_summary\n")
    # THEN the walk finds it
    assert sorted(filter(is_console_module, imported_modules(module))) == [
        "ingest_console.ledger",
        "ingest_console.ledger.run_summary",
    ]


@pytest.mark.parametrize("function", PIPELINE_FUNCTIONS)
def test_a_pipeline_function_loads_nothing_of_the_console(function: str):
    # GIVEN a fresh interpreter in which the dev environment could import the console's package
    # WHEN the function's handler module is loaded as a new execution environment loads it
    modules = modules_at_start(function)
    # THEN the pipeline's package is loaded, and nothing of the console's
    assert {f"functions.{function}.app", "ingest.config"} <= modules
    assert sorted(filter(is_console_module, modules)) == []


def test_the_console_function_loads_its_own_package():
    # The check above can fail: the console function's handler, loaded the same way, holds it.
    modules = modules_at_start("console")
    assert {"ingest_console.api", "ingest_console.aws", "ingest_console.contract"} <= modules
