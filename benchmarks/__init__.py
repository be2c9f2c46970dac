"""Benchmarks for duplexlambda. Each module runs on its own: ``python -m benchmarks.codec``."""
