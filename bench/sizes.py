"""Unzipped sizes of what `sam build` produces: the shared layer and each function."""

from __future__ import annotations

import json
import os

from bench.artifacts import FUNCTIONS, LAYER, build_dir, tree_bytes
from bench.common import progress


def run(quick: bool = False) -> dict:
    built = build_dir()
    layer = tree_bytes(built / LAYER)
    functions = {name: tree_bytes(built / logical_id) for name, logical_id in FUNCTIONS.items()}
    packages = sorted(
        ((tree_bytes(p), p.name) for p in (built / LAYER / "python").iterdir() if p.is_dir()), reverse=True
    )
    biggest = ", ".join(f"{name} {size / 1e6:.1f} MB" for size, name in packages[:4])
    progress(f"  layer {layer / 1e6:.1f} MB (largest: {biggest})")
    return {"layer_bytes": layer, "function_bytes": functions}


if __name__ == "__main__":
    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
