"""Greedy exact match of a model on each part of an entity forget set (forget, uncovered, held-out, neighbours)."""

from __future__ import annotations

from obliviate.data import QARecord
from obliviate.entity.forget_sets import EntityForgetSet
from obliviate.eval.generation import generate_answers
from obliviate.prompts import answers_match

PARTS = ("forget", "uncovered", "heldout_phrasings", "neighbours")


def exact_match(model, tokenizer, records: list[QARecord]) -> float:
    answers = generate_answers(model, tokenizer, [r.question for r in records])
    if not records:
        return float("nan")  # e.g. nothing left uncovered at coverage 1.0
    return sum(answers_match(a, r.answer) for a, r in zip(answers, records)) / len(records)


def probe_entity(model, tokenizer, forget_set: EntityForgetSet) -> dict[str, float]:
    """Exact match per part: what unlearning saw ("forget") is measured apart from what it did not."""
    scores = {part: exact_match(model, tokenizer, getattr(forget_set, part)) for part in PARTS}
    scores["probes"] = exact_match(model, tokenizer, forget_set.probes)
    return scores
