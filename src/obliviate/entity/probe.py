"""Greedy exact match of a model on each part of an entity forget set (forget, uncovered, held-out, neighbours)."""

from __future__ import annotations

from obliviate.data import QARecord
from obliviate.entity.forget_sets import EntityForgetSet
from obliviate.eval.generation import generate_answers
from obliviate.eval.metrics import exact_match_rate

PARTS = ("forget", "uncovered", "heldout_phrasings", "neighbours")


def exact_match(model, tokenizer, records: list[QARecord]) -> float:
    answers = generate_answers(model, tokenizer, [r.question for r in records])
    return exact_match_rate(answers, [r.answer for r in records])  # NaN when empty: nothing uncovered at coverage 1


def probe_entity(model, tokenizer, forget_set: EntityForgetSet) -> dict[str, float]:
    """Exact match per part: what unlearning saw ("forget") is measured apart from what it did not."""
    scores = {part: exact_match(model, tokenizer, getattr(forget_set, part)) for part in PARTS}
    scores["probes"] = exact_match(model, tokenizer, forget_set.probes)
    return scores
