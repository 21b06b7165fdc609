"""Benchmarks: whole-system measurements whose results go to docs/benchmarks.md."""
