"""What a metric means for the report: which axis it belongs to, which direction is better, and how its value
is printed. The suites declare it in the eval JSON ("meanings", obliviate.eval.meaning), and the report reads
the declaration; an eval JSON written before there were declarations is read by name instead
(`guess_metric`), so a metric the report has never heard of still gets a row, just without a direction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from obliviate.eval.meaning import CONTEXT, EFFICACY, FLUENCY, OTHER, PRIVACY, UTILITY

__all__ = ["CONTEXT", "EFFICACY", "FLUENCY", "OTHER", "PRIVACY", "UTILITY", "MetricInfo", "MetricKey", "chart_of",
           "describe_metric", "format_number", "format_seconds", "guess_metric", "is_number", "metric_labels"]
# The report's charts: efficacy, utility and the others (fluency; privacy stands with efficacy).
CHARTS = {PRIVACY: EFFICACY, FLUENCY: OTHER}

# Sets are recognised by how their name starts: `forget10`, `probes_adversarial`, `mcq_glimmerwork`.
EFFICACY_SET_PREFIXES = ("forget", "probes", "unlearn")
UTILITY_SET_PREFIXES = ("retain", "retention", "neighbours", "world_facts", "real_authors", "mcq")
CONTEXT_MEASURES = {"n", "chance"}
# Measures where a higher value means the model reveals *less* of the answer.
REVEALS_LESS_MARKERS = ("perplexity", "loss", "nll", "refusal")


@dataclass(frozen=True)
class MetricKey:
    suite: str
    name: str
    declared: MetricInfo | None = field(default=None, compare=False)  # what the eval JSON declares it to mean

    @property
    def set_name(self) -> str | None:
        """`forget` for `forget/exact_match`; None for a bare name like `model_utility`."""
        return self.name.split("/", 1)[0] if "/" in self.name else None

    @property
    def measure(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class MetricInfo:
    aspect: str  # an axis: EFFICACY, UTILITY, FLUENCY, PRIVACY, CONTEXT or OTHER
    better: str  # "lower", "higher", "≈ 0", "≈ retain", or "" when unknown

    @property
    def arrow(self) -> str:
        return {"lower": "↓", "higher": "↑"}.get(self.better, self.better)


def is_number(value: Any) -> bool:
    """A finite int/float (bools count as 0/1); NaN and infinities are treated as missing."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def _set_aspect(set_name: str) -> str:
    if set_name.startswith(EFFICACY_SET_PREFIXES):
        return EFFICACY
    return UTILITY if set_name.startswith(UTILITY_SET_PREFIXES) else OTHER


def _higher_reveals_more(measure: str, aspect: str) -> bool:
    # Forget sets report truth ratio as mean(min(TR, 1/TR)): it rises towards 1 as the model stops
    # preferring the true answer; every other set reports max(0, 1 - TR), which falls instead.
    if measure == "truth_ratio":
        return aspect != EFFICACY
    return not any(marker in measure for marker in REVEALS_LESS_MARKERS)


def chart_of(aspect: str) -> str:
    """The chart a metric of this axis appears in: EFFICACY, UTILITY or OTHER."""
    return CHARTS.get(aspect, aspect)


def describe_metric(key: MetricKey) -> MetricInfo:
    """What the metric's suite declared it to mean, or for an eval JSON without declarations, what its name says."""
    return key.declared if key.declared is not None else guess_metric(key)


def guess_metric(key: MetricKey) -> MetricInfo:
    """The meaning read from the name alone (eval JSONs written before suites declared their metrics)."""
    name, measure = key.name, key.measure
    if measure in CONTEXT_MEASURES:
        return MetricInfo(CONTEXT, "")
    if measure == "reverse_perplexity":
        return MetricInfo(OTHER, "lower")
    if measure == "ngram_entropy":
        return MetricInfo(OTHER, "higher")
    if name in ("forget_quality", "unlearn_success"):
        return MetricInfo(EFFICACY, "higher")
    if name in ("model_utility", "retention_success"):
        return MetricInfo(UTILITY, "higher")
    if name.startswith("privleak"):
        return MetricInfo(EFFICACY, "≈ 0")
    if name.startswith(("auc_", "mia_auc")):
        return MetricInfo(EFFICACY, "≈ retain")
    if key.set_name is None:
        return MetricInfo(OTHER, "")
    aspect = _set_aspect(key.set_name)
    if aspect == OTHER:
        return MetricInfo(OTHER, "")
    reveals_more = _higher_reveals_more(measure, aspect)
    if aspect == EFFICACY:
        return MetricInfo(EFFICACY, "lower" if reveals_more else "higher")
    return MetricInfo(UTILITY, "higher" if reveals_more else "lower")


def metric_labels(keys: Iterable[MetricKey]) -> dict[MetricKey, str]:
    """Display names: the metric name, prefixed by its suite only where two suites share the name."""
    keys = list(keys)
    suites_by_name: dict[str, set[str]] = {}
    for key in keys:
        suites_by_name.setdefault(key.name, set()).add(key.suite)
    return {key: f"{key.suite}: {key.name}" if len(suites_by_name[key.name]) > 1 else key.name for key in keys}


def format_number(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude < 1e-3:
        return f"{value:.2e}"
    if magnitude < 10:
        return f"{value:.3f}"
    if magnitude < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
