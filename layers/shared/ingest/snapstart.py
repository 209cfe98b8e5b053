"""Lambda SnapStart: what a function made at init and must make again in each restored environment.

With SnapStart (template.yaml's ApiSnapStart) Lambda runs the init phase once per published version,
snapshots the memory, and resumes every new execution environment of that version from the same
snapshot. Whatever init left in memory is then shared by all of them: the state of `random`, the
credentials a botocore session resolved, an open connection. The functions register an after-restore
hook with the runtime's `snapshot_restore_py` module, which exists only in Lambda's Python runtimes;
elsewhere (tests, the local stack, a function without SnapStart) nothing calls the hooks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

try:
    from snapshot_restore_py import register_after_restore
except ImportError:  # not in Lambda's managed runtime: there is no snapshot to restore from

    def register_after_restore(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return func


__all__ = ["register_after_restore", "reseed_random"]


def reseed_random() -> None:
    """Give `random` fresh entropy: restored environments would otherwise draw the same sequence."""
    random.seed()
