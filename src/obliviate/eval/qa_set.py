"""A named set of QA records evaluated with every likelihood and generation metric, from shared passes.

Per record it requests the scores of the answer, the paraphrased answer and each perturbed answer
(all after the record's question) and one greedy generation; per record it then reports
probability, normalised probability and the raw truth ratio (when there are perturbed answers),
exact memorisation, extraction strength, MIA scores, the generation, exact match, ROUGE-L recall
and whether it is a refusal. Set metrics are the means of these, except the truth ratio, which is
aggregated in its forget form (`forget=True`) or its retain form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.data import QARecord, is_refusal
from obliviate.eval import metrics
from obliviate.eval.workload import DEFAULT_MAX_NEW_TOKENS, Generation, Results, Workload
from obliviate.prompts import answers_match

MEAN_METRICS = ("probability", "normalised_probability", "rouge_l_recall", "exact_match", "exact_memorisation",
                "extraction_strength")


@dataclass
class QASet:
    name: str
    records: list[QARecord]
    forget: bool = False  # the set is meant to be forgotten: truth ratio as mean(min(TR, 1/TR))
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    refusals: list[str] | None = None  # phrasings a generation is compared with (None: built-in ones)

    @property
    def questions(self) -> list[str]:
        return [record.question for record in self.records]

    def _generation(self, record: QARecord) -> Generation:
        return Generation(record.question, self.max_new_tokens)

    def plan(self, workload: Workload) -> None:
        for record in self.records:
            workload.score(record.question, record.answer)
            if record.perturbed_answer:
                workload.score(record.question, _paraphrase(record))
                for wrong in record.perturbed_answer:
                    workload.score(record.question, wrong)
            workload.generate(self._generation(record))

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]:
        """(set metrics, one row per record)."""
        rows = [self._row(record, results) for record in self.records]
        return self._aggregate(rows), rows

    def _row(self, record: QARecord, results: Results) -> dict:
        answer = results.score(record.question, record.answer)
        generation = results.generation(self._generation(record))
        row = {"question": record.question, "answer": record.answer, "generation": generation}
        if record.entity is not None:
            row |= {"entity": record.entity, "attribute": record.attribute}
        row["probability"] = metrics.probability(answer)
        if record.perturbed_answer:
            wrong = [results.score(record.question, a) for a in record.perturbed_answer]
            row["normalised_probability"] = metrics.normalised_probability(answer, wrong)
            row["truth_ratio"] = metrics.truth_ratio(results.score(record.question, _paraphrase(record)), wrong)
        row |= {
            "exact_memorisation": metrics.exact_memorisation(answer),
            "extraction_strength": metrics.extraction_strength(answer),
            "exact_match": float(answers_match(generation, record.answer)),
            "rouge_l_recall": metrics.rouge_l_recall(generation, record.answer),
            "refusal": is_refusal(generation, self.refusals),
            **metrics.mia_scores(answer, record.answer),
        }
        return row

    def _aggregate(self, rows: list[dict]) -> dict:
        result: dict = {"n": len(rows)}
        if not rows:
            return result
        for name in MEAN_METRICS:
            if all(name in row for row in rows):
                result[name] = float(np.mean([row[name] for row in rows]))
        ratios = [row["truth_ratio"] for row in rows if "truth_ratio" in row]
        if ratios:
            form = metrics.forget_truth_ratio if self.forget else metrics.retain_truth_ratio
            result["truth_ratio"] = form(ratios)
        result["refusal_rate"] = metrics.refusal_rate([row["generation"] for row in rows], self.refusals)
        return result


def _paraphrase(record: QARecord) -> str:
    """The correct answer the truth ratio compares with: the paraphrased answer, else the answer itself."""
    return record.paraphrased_answer or record.answer
