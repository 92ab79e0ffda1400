"""Multiple-choice accuracy by log-likelihood: each choice is scored as the answer to the question."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from obliviate.data import MCQRecord
from obliviate.eval.scoring import SequenceScore, score_answers
from obliviate.eval.workload import Results, Workload


@dataclass
class MCQResult:
    predicted: int  # argmax of the summed log-likelihood: lm-eval's acc
    predicted_norm: int  # argmax of the log-likelihood per character of the choice: lm-eval's acc_norm
    loglik: list[float]


def choice_pairs(records: list[MCQRecord]) -> list[tuple[str, str]]:
    """(question, choice) for every choice of every record, in order."""
    return [(r.question, choice) for r in records for choice in r.choices]


def mcq_results(records: list[MCQRecord], scores: Sequence[SequenceScore]) -> list[MCQResult]:
    """Predictions from the scores of `choice_pairs(records)`, in the same order. As lm-eval scores a choice: the
    log-likelihood of its tokens alone (without the end-of-sequence token the answer encoding closes with)."""
    scores = iter(scores)
    results = []
    for r in records:
        loglik = [-next(scores).without_eos().nll for _ in r.choices]
        per_character = [ll / max(1, len(choice)) for ll, choice in zip(loglik, r.choices)]
        results.append(MCQResult(int(np.argmax(loglik)), int(np.argmax(per_character)), loglik))
    return results


def mcq_predict(model, tokenizer, records: list[MCQRecord], batch_size: int = 64) -> list[MCQResult]:
    pairs = choice_pairs(records)
    scores = score_answers(model, tokenizer, pairs, batch_size=batch_size, description="scoring choices")
    return mcq_results(records, scores)


def mcq_accuracy(records: list[MCQRecord], results: list[MCQResult]) -> float:
    return sum(res.predicted == r.answer for r, res in zip(records, results)) / max(1, len(records))


@dataclass
class MCQSet:
    """A named set of multiple-choice questions, scored within a shared `Workload`."""

    name: str
    records: list[MCQRecord]

    def plan(self, workload: Workload) -> None:
        for question, choice in choice_pairs(self.records):
            workload.score(question, choice)

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]:
        """(accuracy, length-normalised accuracy, chance level, n; one row per question)."""
        predictions = mcq_results(self.records, [results.score(q, c) for q, c in choice_pairs(self.records)])
        rows = [{
            "question": r.question,
            "answer": r.choices[r.answer],
            "subject": r.subject,
            "predicted": r.choices[p.predicted],
            "correct": float(p.predicted == r.answer),
            "correct_norm": float(p.predicted_norm == r.answer),
        } for r, p in zip(self.records, predictions)]
        if not rows:
            return {"n": 0}, rows
        return {
            "accuracy": float(np.mean([row["correct"] for row in rows])),
            "accuracy_norm": float(np.mean([row["correct_norm"] for row in rows])),
            "chance": float(np.mean([1 / len(r.choices) for r in self.records])),
            "n": len(rows),
        }, rows
