"""Multiple-choice accuracy by log-likelihood on any file of {question, choices, answer} (WMDP, MMLU-style…)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from obliviate.data import MCQRecord, load_mcq
from obliviate.eval.mcq import MCQSet
from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.workload import Results


@register_suite("mcq")
class MCQSuite(Suite):
    description = ("multiple choice by log-likelihood: accuracy, accuracy_norm (per-token), chance; "
                   "<subject>/accuracy per subject")
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

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        rows = output.per_sample
        output.metrics |= {"accuracy": float(np.mean([row["correct"] for row in rows])),
                           "accuracy_norm": float(np.mean([row["correct_norm"] for row in rows])),
                           "n": len(rows)}
        return output
