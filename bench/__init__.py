"""Benchmarks on the production stack: ``python -m bench <name|all> [--quick]``."""
