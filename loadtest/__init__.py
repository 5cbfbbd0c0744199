"""Seatmap's benchmark suite: `python -m loadtest <command>` (see docs/benchmarks.md)."""
