"""Evaluation: the one scoring pass, batched generation, metrics, and the suite registry.

Run suites with `obliviate.eval.run.evaluate` (or `obliviate eval`); see `obliviate.eval.suites`.
"""
