"""Suite-level numbers built from several sets or from a reference eval: utility, forget quality, MIA, PrivLeak."""

from __future__ import annotations

from obliviate.eval import metrics
from obliviate.eval.reference import Reference


def model_utility(suite_metrics: dict, components: tuple[str, ...]) -> float:
    """Harmonic mean of the named "<set>/<metric>" values; NaN when a set was empty and lacks them."""
    values = [suite_metrics.get(name) for name in components]
    return float("nan") if None in values else metrics.harmonic_mean(values)


def forget_quality(reference: Reference | None, suite: str, set_name: str, rows: list[dict]) -> dict:
    """{"forget_quality": KS p-value of the set's truth ratios vs the reference's}, or {} without a reference."""
    if reference is None:
        return {}
    theirs = reference.samples(suite, set_name, [row["question"] for row in rows])
    return {"forget_quality": metrics.forget_quality([row["truth_ratio"] for row in rows],
                                                     [row["truth_ratio"] for row in theirs])}


def membership_inference(members: list[dict], non_members: list[dict], reference: Reference | None,
                         suite: str) -> dict:
    """AUC of each MIA score (rows carry "mia_<score>") and, with a reference, PrivLeak against its AUC."""
    result = {}
    for score in metrics.MIA_SCORES:
        field = f"mia_{score}"
        result[f"auc_{score}"] = metrics.auc([row[field] for row in members], [row[field] for row in non_members])
    if reference is not None:
        for score in metrics.MIA_SCORES:
            result[f"privleak_{score}"] = metrics.privleak(result[f"auc_{score}"],
                                                           reference.metric(suite, f"auc_{score}"))
    return result
