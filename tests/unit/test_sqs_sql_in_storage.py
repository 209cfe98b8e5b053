"""The SQS emulator's SQL lives in local/sqs/storage.py only: the actions call Storage methods, so a
change of schema or index is made, and checked against the queries that use it, in one module."""

import re
from pathlib import Path

from local.template import REPO_ROOT

SQS_PACKAGE = REPO_ROOT / "local" / "sqs"
STORAGE = SQS_PACKAGE / "storage.py"

# A statement run on a connection, or SQL text: keywords in capitals followed by their SQL syntax.
SQL = re.compile(
    r"\.execute(?:many|script)?\("
    r"|\bSELECT\s.+?\sFROM\s+\w+"
    r"|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+\w+"
    r"|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\s+\w+"
    r"|\bCREATE\s+(?:TABLE|INDEX)\b"
)


def sql_lines(module: Path) -> list[str]:
    """The module's lines holding SQL, each with its line number."""
    lines = module.read_text().splitlines()
    return [
        f"{module.name}:{number}: {line.strip()}" for number, line in enumerate(lines, 1) if SQL.search(line)
    ]


def test_no_module_of_the_emulator_but_storage_holds_sql() -> None:
    """GIVEN the emulator's modules WHEN their source is scanned THEN only storage.py holds SQL."""
    others = [module for module in sorted(SQS_PACKAGE.glob("*.py")) if module != STORAGE]

    found = [line for module in others for line in sql_lines(module)]

    assert others
    assert found == []


def test_the_scan_finds_the_sql_storage_holds() -> None:
    """GIVEN storage.py, which runs every statement WHEN it is scanned THEN each kind of statement is found,
    so the scan above would report SQL written elsewhere."""
    found = "\n".join(sql_lines(STORAGE))

    for statement in (".execute(", "SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "CREATE TABLE"):
        assert statement in found
