"""KnowUnDo: teacher-forced token accuracy and answer perplexity on unlearn-val and retention-val.

As KnowUnDo's run_eval_lora.py computes them (its acc and ppl): per sample, then averaged over samples —
token_accuracy is the mean of each answer's argmax accuracy (a fraction; KnowUnDo prints it ×100), perplexity
is exp of minus the mean of each answer's mean token log-probability.

With a reference eval of the model before unlearning, success is relative to it:
unlearn_success = max(0, 1 − acc/acc_before) on unlearn_val (how much of the known answer tokens are
gone) and retention_success = min(1, acc/acc_before) on retention_val (how much is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.data import QARecord, load_knowundo
from obliviate.data.knowundo import KNOWUNDO_HUB
from obliviate.eval import metrics
from obliviate.eval.meaning import EFFICACY, HIGHER, UTILITY, Meaning
from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.workload import Results, Workload

SETS = ("unlearn_val", "retention_val")


@dataclass
class LikelihoodSet:
    """QA records scored teacher-forced only: token accuracy and perplexity, no generation."""

    name: str
    records: list[QARecord]

    @property
    def questions(self) -> list[str]:
        return [record.question for record in self.records]

    def plan(self, workload: Workload) -> None:
        for record in self.records:
            workload.score(record.question, record.answer)

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]:
        scores = [results.score(r.question, r.answer) for r in self.records]
        rows = [{"question": r.question, "answer": r.answer, "subject": r.subject,
                 "token_accuracy": metrics.token_accuracy(s), "probability": metrics.probability(s)}
                for r, s in zip(self.records, scores)]
        accuracy = float(np.mean([row["token_accuracy"] for row in rows])) if rows else 0.0
        return {"token_accuracy": accuracy, "perplexity": metrics.sample_perplexity(scores),
                "n": len(rows)}, rows


@register_suite("knowundo")
class KnowUnDoSuite(Suite):
    description = ("KnowUnDo: unlearn_val/ and retention_val/ token_accuracy and perplexity; unlearn_success and "
                   "retention_success relative to --reference-eval (the model before unlearning)")
    data_keys = {
        "knowundo": f"KnowUnDo JSON file, directory or hub name (default {KNOWUNDO_HUB})",
        "domain": "copyright or privacy (default: every domain in the data)",
    }
    reference_sets = SETS
    reference_metrics = tuple(f"{name}/token_accuracy" for name in SETS)
    forget_sets = ("unlearn_val",)
    metric_meanings = {"unlearn_success": Meaning(EFFICACY, HIGHER), "retention_success": Meaning(UTILITY, HIGHER)}

    def __init__(self, context):
        super().__init__(context)
        domains = load_knowundo(context.data.get("knowundo", KNOWUNDO_HUB), context.data.get("domain"))
        self.sets = [LikelihoodSet(name, context.limited([r for splits in domains.values() for r in splits[name]]))
                     for name in SETS]

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        reference = self.context.reference
        if reference is not None:
            kept = {name: _fraction_kept(output.metrics[f"{name}/token_accuracy"],
                                         reference.metric(self.name, f"{name}/token_accuracy"))
                    for name in SETS}
            output.metrics["unlearn_success"] = max(0.0, 1 - kept["unlearn_val"])
            output.metrics["retention_success"] = min(1.0, kept["retention_val"])
        return output


def _fraction_kept(accuracy: float, accuracy_before: float) -> float:
    """Token accuracy relative to before (1 when there was nothing to lose)."""
    return accuracy / accuracy_before if accuracy_before > 0 else 1.0
