"""Two headline numbers per entry, for the summary and the trade-off scatter.

* **forgetting** = 1 − mean exact match over the efficacy sets (`forget`, `probes`, …); ROUGE-L
  recall when no entry reports exact match, then token accuracy (KnowUnDo), then multiple-choice
  accuracy on sets to be forgotten (WMDP, an erased craft). 1 = nothing of the target is reproduced.
* **utility** = mean of the utility metrics that lie in [0, 1] and where higher is better
  (`retain/*`, `neighbours/*`, `world_facts/*`, `model_utility`, `mcq_accuracy/*`, …).

Both average only the metrics that *every* entry reporting such metrics has, so the numbers of two
entries are always means over the same metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from obliviate.report.entries import ReportEntry
from obliviate.report.metrics import EFFICACY, UTILITY, MetricKey, describe_metric

FORGETTING_MEASURES = ("exact_match", "rouge_l_recall", "token_accuracy", "accuracy")


@dataclass
class Score:
    metrics: list[MetricKey]  # what was averaged
    values: dict[str, float]  # entry label -> score
    description: str


Selector = Callable[[MetricKey, float], bool]


def _common_metrics(
    entries: list[ReportEntry], selected: Selector
) -> tuple[list[MetricKey], dict[str, dict[MetricKey, float]]]:
    """The selected metrics every entry with any of them reports, and each such entry's values."""
    chosen = {entry.label: {k: v for k, v in entry.metric_values().items() if selected(k, v)} for entry in entries}
    chosen = {label: values for label, values in chosen.items() if values}
    if not chosen:
        return [], {}
    first = next(iter(chosen.values()))
    common = [key for key in first if all(key in values for values in chosen.values())]
    return common, chosen


def _on_efficacy_sets(measure: str) -> Selector:
    def selected(key: MetricKey, value: float) -> bool:
        return key.measure == measure and key.set_name is not None and describe_metric(key).aspect == EFFICACY

    return selected


def forgetting_score(entries: list[ReportEntry]) -> Score | None:
    for measure in FORGETTING_MEASURES:
        common, chosen = _common_metrics(entries, _on_efficacy_sets(measure))
        if common:
            values = {label: 1 - sum(v[key] for key in common) / len(common) for label, v in chosen.items()}
            sets = ", ".join(sorted({key.set_name for key in common}))
            return Score(common, values, f"1 − mean {measure} on {sets}")
    return None


def utility_score(entries: list[ReportEntry]) -> Score | None:
    def selected(key: MetricKey, value: float) -> bool:
        info = describe_metric(key)
        return info.aspect == UTILITY and info.better == "higher" and 0 <= value <= 1

    common, chosen = _common_metrics(entries, selected)
    if not common:
        return None
    values = {label: sum(v[key] for key in common) / len(common) for label, v in chosen.items()}
    return Score(common, values, f"mean of {len(common)} utility metrics")
