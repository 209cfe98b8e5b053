"""Failure drills for the local stack: python -m local.drill (make drill)."""
