"""What each metric means, declared by the suite that makes it (as lm-eval's `higher_is_better`): its axis and
which way is better. The eval JSON carries the declarations beside the values,

    "meanings": {"<suite>": {"<metric>": {"axis": "efficacy", "better": "lower"}, ...}, ...}

and the report reads them instead of guessing from names.

A per-set metric "<set>/<measure>" means what its measure says about the model's knowledge of the set, read
against what the set is for: on a set to be forgotten (the suite's forget sets, and any set named in
`--data forget_sets=a,b`, e.g. an erased craft's MCQ) it is efficacy, on any other set utility.
"""

from __future__ import annotations

from dataclasses import dataclass

EFFICACY = "efficacy"  # how much of the forget target is gone
UTILITY = "utility"  # how much of everything else is kept
FLUENCY = "fluency"  # whether the model still writes well
PRIVACY = "privacy"  # whether forget samples still look like training members
CONTEXT = "context"  # sample counts and chance levels: shown, never charted or scored
OTHER = "other"  # a metric its suite does not declare
AXES = (EFFICACY, UTILITY, FLUENCY, PRIVACY, CONTEXT, OTHER)

HIGHER, LOWER, NEAR_ZERO, NEAR_RETAIN = "higher", "lower", "≈ 0", "≈ retain"

# How a per-set measure moves with the model's knowledge of the set.
KNOWS_MORE = "knows more"  # a higher value: the model knows more of the set (exact match, probability, accuracy…)
KNOWS_LESS = "knows less"  # a higher value: the model knows less of it (perplexity, refusals)
MEASURES = {
    **dict.fromkeys(("exact_match", "rouge_l_recall", "probability", "normalised_probability", "exact_memorisation",
                     "extraction_strength", "accuracy", "accuracy_norm", "token_accuracy", "kept"), KNOWS_MORE),
    **dict.fromkeys(("perplexity", "refusal_rate"), KNOWS_LESS),
    **dict.fromkeys(("n", "chance"), CONTEXT),
}
FORGET_SETS_KEY = "forget_sets"  # --data forget_sets=a,b: more sets, of any suite, whose knowledge is to be forgotten


@dataclass(frozen=True)
class Meaning:
    axis: str
    better: str = ""  # HIGHER, LOWER, NEAR_ZERO, NEAR_RETAIN, or "" (context, undeclared)

    def to_json(self) -> dict:
        return {"axis": self.axis, "better": self.better}


def set_meaning(measure: str, forgotten: bool) -> Meaning:
    """A per-set measure on a set to be forgotten (efficacy) or kept (utility). The truth ratio is aggregated in its
    forget form on forget sets (it rises as the model stops preferring the truth), in its retain form elsewhere."""
    kind = (KNOWS_LESS if forgotten else KNOWS_MORE) if measure == "truth_ratio" else MEASURES.get(measure)
    if kind is None:
        return Meaning(OTHER)
    if kind == CONTEXT:
        return Meaning(CONTEXT)
    if forgotten:
        return Meaning(EFFICACY, LOWER if kind == KNOWS_MORE else HIGHER)
    return Meaning(UTILITY, HIGHER if kind == KNOWS_MORE else LOWER)


def named_sets(data: dict[str, str]) -> set[str]:
    """The set names given in `--data forget_sets=a,b`."""
    return {name.strip() for name in data.get(FORGET_SETS_KEY, "").split(",") if name.strip()}


MIA_MEANINGS = {"auc_*": Meaning(PRIVACY, NEAR_RETAIN), "privleak_*": Meaning(PRIVACY, NEAR_ZERO)}
COMPARISON_MEANINGS = {"model_utility": Meaning(UTILITY, HIGHER), "forget_quality": Meaning(EFFICACY, HIGHER)}
