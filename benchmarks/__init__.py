"""Benchmarks for duplexlambda against the runtimes users would pick instead.

``python -m benchmarks all [--quick]`` runs them all (see docs/benchmarks.md); each one also
runs alone, e.g. ``python -m benchmarks roundtrip``. ``codec.py`` and ``emulator_memory.py``
are also scripts of their own: ``python benchmarks/codec.py --quick``.
"""
