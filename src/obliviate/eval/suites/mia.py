"""Membership inference (MUSE-style): LOSS, zlib, Min-k% and Min-k%++ AUCs, forget vs holdout, and PrivLeak."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.data import load_qa, load_texts, read_rows
from obliviate.errors import ObliviateError
from obliviate.eval import metrics
from obliviate.eval.meaning import MIA_MEANINGS
from obliviate.eval.scoring import SequenceScore
from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.suites.comparisons import membership_inference
from obliviate.eval.suites.world import forget_entity_ids
from obliviate.eval.workload import Results, Workload


@dataclass(frozen=True)
class Sample:
    """A text scored on its own, or an answer scored after its question."""

    text: str
    question: str | None = None


@dataclass
class MembershipSet:
    name: str
    samples: list[Sample]

    def plan(self, workload: Workload) -> None:
        for sample in self.samples:
            if sample.question is None:
                workload.score_text(sample.text)
            else:
                workload.score(sample.question, sample.text)

    def _score(self, sample: Sample, results: Results) -> SequenceScore:
        if sample.question is None:
            return results.text_score(sample.text)
        return results.score(sample.question, sample.text)

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]:
        rows = [{"question": sample.question, "answer": sample.text,
                 **metrics.mia_scores(self._score(sample, results), sample.text)}
                for sample in self.samples]
        return {"n": len(rows)}, rows


def load_samples(path: str) -> list[Sample]:
    """QA rows (question/answer, or KnowUnDo's text/labels) give answers to score; other rows give texts."""
    first = read_rows(path)[0]
    if "question" in first or "labels" in first:
        return [Sample(r.answer, r.question) for r in load_qa(path)]
    return [Sample(r.text) for r in load_texts(path)]


@register_suite("mia")
class MembershipInferenceSuite(Suite):
    description = ("membership inference, higher score = more member-like: auc_<score> of forget vs holdout for "
                   "loss, zlib, min_k, min_k_plus_plus; privleak_<score> against --reference-eval's AUC")
    data_keys = {
        "forget": "QA or text file of forget-set samples (default: the world's forget-entity QA)",
        "holdout": "QA or text file of samples never learned, or kept (default: the world's retain-entity QA)",
    }
    reference_metrics = tuple(f"auc_{score}" for score in metrics.MIA_SCORES)
    forget_sets = ("forget",)
    metric_meanings = MIA_MEANINGS

    def __init__(self, context):
        super().__init__(context)
        given = [key for key in ("forget", "holdout") if key in context.data]
        if len(given) == 1:
            raise ObliviateError("the mia suite needs both --data forget=FILE and --data holdout=FILE, or neither")
        if given:
            forget, holdout = (load_samples(context.data[key]) for key in ("forget", "holdout"))
        else:
            world = context.world
            forget_ids = forget_entity_ids(context)
            forget, holdout = ([Sample(r.answer, r.question) for r in world.qa(ids)]
                               for ids in (forget_ids, world.retain_entity_ids(forget_ids)))
        self.sets = [MembershipSet(name, context.limited(samples))
                     for name, samples in (("forget", forget), ("holdout", holdout))]

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        output.metrics |= membership_inference(output.rows("forget"), output.rows("holdout"),
                                               self.context.reference, self.name)
        return output
