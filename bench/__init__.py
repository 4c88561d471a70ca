"""Benchmarks (not tests): they print figures and assert nothing about time (docs/benchmarks.md)."""
