"""The demo console: its contract, JSON API and AWS backend, shipped only with the console function."""
