"""The CLI's output: a subcommand's result as indented text for people, or as JSON for scripts."""

from __future__ import annotations

import json
from typing import Any, TextIO

from ops import verify


def emit(result: dict[str, Any] | verify.Report, output: str, out: TextIO) -> None:
    """Write `result` to `out` in the --output format (text or json)."""
    if isinstance(result, verify.Report):
        out.write(result.json() if output == "json" else result.text())
        return
    if output == "json":
        json.dump(result, out, indent=2, default=str)
        out.write("\n")
    else:
        _write_text(result, out)


def _write_text(value: Any, out: TextIO, indent: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.write(f"{indent}{key}:\n")
                _write_text(item, out, indent + "  ")
            else:
                out.write(f"{indent}{key}: {_scalar(item)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                out.write(f"{indent}- " + ", ".join(f"{k}={_scalar(v)}" for k, v in item.items()) + "\n")
            else:
                out.write(f"{indent}- {_scalar(item)}\n")


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return "none"
    return str(value)
