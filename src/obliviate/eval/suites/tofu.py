"""TOFU: forget quality (KS test against a retain model's eval) and model utility (harmonic mean of 9 numbers)."""

from __future__ import annotations

from obliviate.data import load_tofu
from obliviate.errors import ObliviateError
from obliviate.eval.meaning import COMPARISON_MEANINGS
from obliviate.eval.qa_set import QASet
from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.suites.comparisons import forget_quality, model_utility
from obliviate.eval.workload import Results

FORGET_SPLITS = ("forget01", "forget05", "forget10")
MAX_NEW_TOKENS = 200
# real_authors and world_facts answers are a few words (at most ~20 tokens): a model that never
# stops would otherwise generate 200 tokens for each, which dominates the evaluation's time.
MAX_NEW_TOKENS_SHORT = 64
SHORT_ANSWER_SETS = ("real_authors", "world_facts")
# Probability is normalised over the perturbed answers on the general-knowledge sets.
UTILITY = (
    "retain/probability", "retain/rouge_l_recall", "retain/truth_ratio",
    "real_authors/normalised_probability", "real_authors/rouge_l_recall", "real_authors/truth_ratio",
    "world_facts/normalised_probability", "world_facts/rouge_l_recall", "world_facts/truth_ratio",
)


@register_suite("tofu")
class TofuSuite(Suite):
    description = ("TOFU: probability, ROUGE-L recall and truth ratio on forget/retain/real_authors/world_facts; "
                   "model_utility; forget_quality against --reference-eval (a retain model's tofu eval)")
    data_keys = {
        "tofu": "TOFU directory (default: $OBLIVIATE_TOFU_DIR, ../shared/data/tofu, else the hub)",
        "forget_split": f"one of {', '.join(FORGET_SPLITS)} (default forget10)",
    }
    reference_sets = ("forget",)
    forget_sets = ("forget",)
    metric_meanings = COMPARISON_MEANINGS

    def __init__(self, context):
        super().__init__(context)
        forget_split = context.data.get("forget_split", "forget10")
        if forget_split not in FORGET_SPLITS:
            raise ObliviateError(f"--data forget_split={forget_split}: choose one of {', '.join(FORGET_SPLITS)}")
        root = context.data.get("tofu")
        files = {"forget": f"{forget_split}_perturbed", "retain": "retain_perturbed",
                 "real_authors": "real_authors_perturbed", "world_facts": "world_facts_perturbed"}
        self.sets = [QASet(name, context.limited(load_tofu(split, root)), forget=name == "forget",
                           max_new_tokens=MAX_NEW_TOKENS_SHORT if name in SHORT_ANSWER_SETS else MAX_NEW_TOKENS,
                           refusals=context.refusals)
                     for name, split in files.items()]

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        output.metrics["model_utility"] = model_utility(output.metrics, UTILITY)
        output.metrics |= forget_quality(self.context.reference, self.name, "forget", output.rows("forget"))
        return output
