"""Benchmark clients: one module per library, each run as ``python -m bench.clients.NAME``."""
