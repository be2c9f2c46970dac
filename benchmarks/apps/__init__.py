"""Handler code the benchmarks run inside the runtimes under test.

This directory is the functions' task root (``LAMBDA_TASK_ROOT`` and ``PYTHONPATH``), so the
modules here are imported by their bare names (``bench_plain.echo``): each one stands alone.
"""
