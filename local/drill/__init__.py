"""Failure drills for the local stack: python -m local.drill (make drill)."""

from local.lambda_runtime import ensure_import_paths

# The drill's baselines import the layer's `ingest` package, which Lambda would find in /opt/python.
ensure_import_paths()
