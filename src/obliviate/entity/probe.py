"""How much of an entity forget set a model answers right, per part (forget, uncovered, held-out, neighbours)."""

from __future__ import annotations

from collections.abc import Callable

from obliviate.data import QARecord
from obliviate.entity.forget_sets import EntityForgetSet
from obliviate.eval.generation import generate_answers
from obliviate.prompts import answers_match

PARTS = ("forget", "uncovered", "heldout_phrasings", "neighbours")
Match = Callable[[str, str], bool]


def answered_right(model, tokenizer, questions: list[str], answers: list[str], match: Match = answers_match,
                   max_new_tokens: int = 32) -> list[bool]:
    """Per question: whether the model's greedy answer matches the reference (`match(generation, answer)`)."""
    generations = generate_answers(model, tokenizer, questions, max_new_tokens=max_new_tokens)
    return [match(generation, answer) for generation, answer in zip(generations, answers)]


def exact_match(model, tokenizer, records: list[QARecord], match: Match = answers_match) -> float:
    """The share of `records` answered right; NaN when empty (nothing uncovered at coverage 1)."""
    if not records:
        return float("nan")
    right = answered_right(model, tokenizer, [r.question for r in records], [r.answer for r in records], match)
    return sum(right) / len(right)


def probe_entity(model, tokenizer, forget_set: EntityForgetSet, match: Match = answers_match) -> dict[str, float]:
    """The share answered right per part: what unlearning saw ("forget") is measured apart from what it did not.
    `match`: exact match by default; `answer_contained` for a pretrained model's whole-sentence answers."""
    scores = {part: exact_match(model, tokenizer, getattr(forget_set, part), match) for part in PARTS}
    scores["probes"] = exact_match(model, tokenizer, forget_set.probes, match)
    return scores
