"""Multiple-choice accuracy by log-likelihood on any file of {question, choices, answer} (WMDP, MMLU-style…)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from obliviate.data import MCQRecord, load_mcq
from obliviate.eval.mcq import MCQSet
from obliviate.eval.meaning import Meaning, set_meaning
from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.workload import Results


FORGET_SUBJECT_PREFIXES = ("wmdp",)


@register_suite("mcq")
class MCQSuite(Suite):
    description = ("multiple choice by log-likelihood: accuracy, accuracy_norm (per-token), chance; "
                   "<subject>/accuracy per subject (efficacy for WMDP's subjects and --data forget_sets=…, else "
                   "utility)")
    data_keys = {
        "mcq": "multiple-choice file or hub dataset (default: the world's craft questions)",
        "mcq_split": "split of the file or hub dataset, when it has several",
        "mcq_config": "hub dataset configuration (e.g. wmdp-cyber)",
    }

    def __init__(self, context):
        super().__init__(context)
        source = context.data.get("mcq")
        if source is None:
            records = context.world.mcq()
        else:
            records = load_mcq(source, split=context.data.get("mcq_split"), config=context.data.get("mcq_config"))
        by_subject: dict[str, list[MCQRecord]] = defaultdict(list)
        for record in records:
            by_subject[record.subject or "all"].append(record)
        self.sets = [MCQSet(subject, context.limited(group)) for subject, group in by_subject.items()]

    def is_forget_set(self, set_name: str) -> bool:
        """WMDP's subjects are hazardous knowledge to forget; any other subject is kept unless the evaluation
        names it."""
        return set_name.startswith(FORGET_SUBJECT_PREFIXES) or super().is_forget_set(set_name)

    def meaning(self, metric: str) -> Meaning:
        """The accuracies over every question are efficacy when every subject is to be forgotten."""
        if "/" not in metric:
            return set_meaning(metric, all(self.is_forget_set(eval_set.name) for eval_set in self.sets))
        return super().meaning(metric)

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        rows = output.per_sample
        output.metrics |= {"accuracy": float(np.mean([row["correct"] for row in rows])),
                           "accuracy_norm": float(np.mean([row["correct_norm"] for row in rows])),
                           "n": len(rows)}
        return output
