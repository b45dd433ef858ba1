"""Benchmarks of the PEFT methods on SAM: timing and memory harness, the authors' naive SALT, multiply-add
counts, and the layer-, model-, inference- and data-level cases run by ``scripts/benchmark.py``."""
