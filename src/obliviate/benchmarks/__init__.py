"""Benchmarks run end to end on their real data: `obliviate bench <name>`."""
