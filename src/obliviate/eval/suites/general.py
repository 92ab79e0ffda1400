"""General knowledge a pretrained model should keep: TOFU's real_authors and world_facts questions, by generation.

Each question gets one greedy answer of up to 64 tokens, through the chat template when the tokenizer
has one (then the whole assistant turn is the answer; in the plain format, its first line). Per
question: `correct` — the reference answer is contained in the generation as a whole-word span
(`obliviate.eval.answer_match.answer_contained`, so "The capital of France is Paris." is right
for "Paris") — `rouge_l_recall`, and `exact_match` for comparison. The 217 questions have short
reference answers (a name, a place, a year).

`accuracy` is absolute: the share of questions answered right. With a reference eval (the model
before unlearning, evaluated with this suite on the same data and --limit), `kept` is relative:
of the questions the reference answered right, the share still answered right (null when the
reference answered none right); `reference_accuracy` is the reference's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.data import QARecord, load_tofu
from obliviate.eval import metrics
from obliviate.eval.answer_match import answer_contained
from obliviate.eval.meaning import CONTEXT, MEASURES, Meaning, set_meaning
from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.suites.tofu import MAX_NEW_TOKENS_SHORT
from obliviate.eval.workload import Generation, Results, Workload
from obliviate.prompts import answers_match, uses_chat_template

SPLITS = {"real_authors": "real_authors_perturbed", "world_facts": "world_facts_perturbed"}
ROW_METRICS = ("correct", "rouge_l_recall", "exact_match")


@dataclass
class GeneralSet:
    name: str
    records: list[QARecord]
    first_line_only: bool = True  # the suite sets it from the tokenizer before planning

    @property
    def questions(self) -> list[str]:
        return [record.question for record in self.records]

    def _generation(self, record: QARecord) -> Generation:
        return Generation(record.question, MAX_NEW_TOKENS_SHORT, self.first_line_only)

    def plan(self, workload: Workload) -> None:
        for record in self.records:
            workload.generate(self._generation(record))

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]:
        rows = []
        for record in self.records:
            generation = results.generation(self._generation(record))
            rows.append({"question": record.question, "answer": record.answer, "generation": generation,
                         "correct": float(answer_contained(generation, record.answer)),
                         "rouge_l_recall": metrics.rouge_l_recall(generation, record.answer),
                         "exact_match": float(answers_match(generation, record.answer))})
        return _means(rows), rows


def _means(rows: list[dict]) -> dict:
    means = {("accuracy" if name == "correct" else name): float(np.mean([row[name] for row in rows]))
             for name in ROW_METRICS} if rows else {}
    return {"n": len(rows), **means}


def kept(rows: list[dict], reference_rows: list[dict]) -> tuple[float, int]:
    """(share of the questions the reference answered right that `rows` still answer right, how many it answered
    right); NaN when it answered none right."""
    right_before = {(row["set"], row["question"]) for row in reference_rows if row["correct"]}
    still = sum(1 for row in rows if (row["set"], row["question"]) in right_before and row["correct"])
    return (still / len(right_before) if right_before else float("nan")), len(right_before)


@register_suite("general")
class GeneralSuite(Suite):
    description = ("general knowledge by generation (chat template if any) on TOFU's real_authors and world_facts: "
                   "accuracy (absolute: share of answers containing the reference as whole words), rouge_l_recall, "
                   "exact_match, per set and pooled; with --reference-eval (the model before unlearning): kept "
                   "(relative: share of the questions the reference got right that are still right) and "
                   "reference_accuracy")
    data_keys = {"tofu": "TOFU directory (default: $OBLIVIATE_TOFU_DIR, ../shared/data/tofu, else the hub)"}
    reference_sets = tuple(SPLITS)
    # the pooled numbers mean what the per-set ones do: general knowledge kept (utility)
    metric_meanings = {**{name: set_meaning(name, forgotten=False) for name in MEASURES},
                       "reference_accuracy": Meaning(CONTEXT)}

    def __init__(self, context):
        super().__init__(context)
        root = context.data.get("tofu")
        self.sets = [GeneralSet(name, context.limited(load_tofu(split, root))) for name, split in SPLITS.items()]

    def plan(self, workload: Workload) -> None:
        first_line_only = not uses_chat_template(self.context.tokenizer)
        for eval_set in self.sets:
            eval_set.first_line_only = first_line_only
        super().plan(workload)

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        rows = output.per_sample
        output.metrics |= _means(rows)
        reference = self.context.reference
        if reference is not None:
            theirs = {name: reference.samples(self.name, name, eval_set.questions)
                      for name, eval_set in zip(SPLITS, self.sets)}
            for name, reference_rows in theirs.items():
                output.metrics[f"{name}/kept"], _ = kept(output.rows(name), reference_rows)
            pooled = [row for reference_rows in theirs.values() for row in reference_rows]
            output.metrics["kept"], right = kept(rows, pooled)
            output.metrics["reference_accuracy"] = right / len(pooled) if pooled else float("nan")
        return output
