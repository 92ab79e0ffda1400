"""The report's first screen: one scorecard per unlearned model, read against the model before unlearning and
the retain model (the one that never learned the forget target).

Each evaluated entry gets a role. The *original* is the entry that evaluates the model a run started from
(run.json "model"); the *retain* model is, of the others, the entry another entry's eval names as its reference
eval (`obliviate eval --reference-eval`) or one labelled "retain…"; an entry labelled "before…" is an original
too; every other entry with metrics is a *candidate* and gets a scorecard. (In the pretrained demo the model as
it came, which never saw the people, is the retain model: the taught model's eval takes it as reference.)

* forget set and held-out probes: the headline measure (exact match, else ROUGE-L recall, token accuracy,
  accuracy) on the sets to be forgotten, the probes apart;
* utility: the report's utility score (mean of the utility metrics in [0, 1]), also as a share of before's;
* fluency: reverse perplexity (fluency suite) over before's: 1 = as fluent as before, higher = less fluent;
* robustness: the attack that brought back the largest share of the floor→upper gap (attacks.json);
* wall time of the unlearning run.

A verdict against the retain model is "within noise" when the difference of the per-question means is at
most NOISE_SE standard errors (Welch: sqrt(var_a/n_a + var_b/n_b), each over the questions of the tile's sets;
for fluency over the log reverse perplexity of each generation).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from obliviate.report.entries import ReportEntry
from obliviate.report.metrics import (
    EFFICACY,
    UTILITY,
    MetricKey,
    describe_metric,
    format_number,
    format_seconds,
    is_number,
)
from obliviate.report.scores import FORGETTING_MEASURES, utility_score

NOISE_SE = 2.0
RETAIN, ORIGINAL, CANDIDATE = "retain", "original", "candidate"
PROBE_PREFIX = "probes"
FLUENCY_SUITE, REVERSE_PERPLEXITY = "fluency", "reverse_perplexity"
HOLDS = 0.1  # an attack that brings back at most this share of the gap leaves the forgetting standing


@dataclass(frozen=True)
class Verdict:
    text: str
    good: bool | None  # None: neither (no reference, or a difference that is neither better nor worse)


@dataclass(frozen=True)
class Tile:
    name: str  # "forget set", "held-out probes", "utility", "fluency", "robustness", "wall time"
    value: str
    better: str  # "↓", "↑" or ""
    detail: str  # the references: before, the retain model
    verdict: Verdict | None
    sort_value: float | None  # for sorting a table of scorecards

    @property
    def measure_note(self) -> str:
        return f"{self.name} {self.better}".strip()


@dataclass(frozen=True)
class Scorecard:
    label: str  # the candidate entry's label
    headline: str  # what was done: method, forget set, steps
    tiles: list[Tile]


def tile_columns(cards: list[Scorecard]) -> dict[str, str]:
    """The tiles of a table of scorecards, in order: tile name -> column heading (name and direction)."""
    return {tile.name: tile.measure_note for card in cards for tile in card.tiles}


def _same_model(first: str | None, second: str | None) -> bool:
    if not first or not second:
        return False
    if first == second:
        return True
    return Path(first).expanduser().resolve() == Path(second).expanduser().resolve()


def roles(entries: list[ReportEntry]) -> dict[str, str]:
    """Entry label -> RETAIN, ORIGINAL or CANDIDATE, for the entries with metrics."""
    evaluated = [entry for entry in entries if entry.metrics]
    referenced = {entry.reference for entry in evaluated if entry.reference is not None}
    run_models = [entry.run.model for entry in evaluated if entry.run is not None and entry.run.model]

    def role(entry: ReportEntry) -> str:
        label = entry.label.lower()
        if any(_same_model(entry.model, model) for model in run_models):
            return ORIGINAL  # even when another eval took it as its reference (the pretrained demo's after.json)
        if (entry.source is not None and entry.source.resolve() in referenced) or label.startswith("retain"):
            return RETAIN
        return ORIGINAL if label.startswith("before") else CANDIDATE

    return {entry.label: role(entry) for entry in evaluated}


def _counterpart(candidate: ReportEntry, entries: list[ReportEntry], labels: dict[str, str], wanted: str):
    """The candidate's original (the model its run started from, else an original in its run directory) or retain
    model (its reference eval); else the only entry of that role."""
    pool = [entry for entry in entries if labels.get(entry.label) == wanted]
    if wanted == ORIGINAL and candidate.run is not None:
        matched = [entry for entry in pool if _same_model(entry.model, candidate.run.model)] or [
            entry for entry in pool if entry.run is not None and entry.run.path == candidate.run.path]
    elif wanted == RETAIN and candidate.reference is not None:
        matched = [entry for entry in pool
                   if entry.source is not None and entry.source.resolve() == candidate.reference]
    else:
        matched = []
    return matched[0] if matched else (pool[0] if len(pool) == 1 else None)


def _per_question(entry: ReportEntry, keys: list[MetricKey], measure: str) -> list[float]:
    wanted = {(key.suite, key.set_name) for key in keys}
    return [float(row[measure]) for row in entry.per_sample
            if (row.get("suite"), row.get("set")) in wanted and is_number(row.get(measure))]


def noise_test(run: list[float], retain: list[float]) -> tuple[float, float] | None:
    """(difference of means, its standard error), or None with fewer than two values on either side."""
    if len(run) < 2 or len(retain) < 2:
        return None
    difference = statistics.fmean(run) - statistics.fmean(retain)
    error = math.sqrt(statistics.variance(run) / len(run) + statistics.variance(retain) / len(retain))
    return difference, error


def verdict(run: list[float], retain: list[float], higher_is_better: bool, measure: str) -> Verdict | None:
    """Against the retain model: within noise, or above / below it by how much (per question, ± NOISE_SE SE)."""
    tested = noise_test(run, retain)
    if tested is None:
        return None
    difference, error = tested
    if abs(difference) <= NOISE_SE * error:
        return Verdict("like the retain model (within noise)", True)
    above = difference > 0
    size = f"{difference:+.3f} ± {NOISE_SE * error:.3f} {measure} per question"
    return Verdict(f"{'above' if above else 'below'} the retain model ({size})", above == higher_is_better)


def _mean_over(entry: ReportEntry | None, keys: list[MetricKey]) -> float | None:
    if entry is None:
        return None
    values = entry.metric_values()
    present = [values[key] for key in keys if key in values]
    return sum(present) / len(present) if present else None


def _words(measure: str) -> str:
    return measure.replace("_", " ")


def _detail(before: float | None, retain: float | None) -> str:
    parts = ([f"before {format_number(before)}"] if before is not None else []) + (
        [f"retain model {format_number(retain)}"] if retain is not None else [])
    return " · ".join(parts)


def _headline_keys(entry: ReportEntry, aspect: str) -> tuple[str, list[MetricKey]]:
    """The first of FORGETTING_MEASURES the entry reports on its per-set metrics of `aspect`, and those keys."""
    keys = [key for key in entry.metric_values() if key.set_name is not None and describe_metric(key).aspect == aspect]
    for measure in FORGETTING_MEASURES:
        chosen = [key for key in keys if key.measure == measure]
        if chosen:
            return measure, chosen
    return "", []


def _forget_tiles(candidate: ReportEntry, before, retain) -> list[Tile]:
    measure, keys = _headline_keys(candidate, EFFICACY)
    tiles = []
    groups = [("forget set", [key for key in keys if not key.set_name.startswith(PROBE_PREFIX)]),
              ("held-out probes", [key for key in keys if key.set_name.startswith(PROBE_PREFIX)])]
    for name, group in groups:
        value = _mean_over(candidate, group)
        if value is None:
            continue
        judged = verdict(_per_question(candidate, group, measure), _per_question(retain, group, measure), False,
                         _words(measure)) if retain is not None else None
        tiles.append(Tile(f"{name}: {_words(measure)}", format_number(value), "↓",
                          _detail(_mean_over(before, group), _mean_over(retain, group)), judged, value))
    return tiles


def _utility_tile(candidate: ReportEntry, before, retain) -> Tile | None:
    compared = [entry for entry in (before, candidate, retain) if entry is not None]
    score = utility_score(compared)
    if score is None or candidate.label not in score.values:
        return None
    value = score.values[candidate.label]
    before_value = score.values.get(before.label) if before is not None else None
    kept = f"{value / before_value:.0%} of before" if before_value else None
    retain_value = score.values.get(retain.label) if retain is not None else None
    detail = " · ".join(part for part in (f"mean of {len(score.metrics)} metrics", kept, _detail(None, retain_value))
                        if part)
    measure, keys = _headline_keys(candidate, UTILITY)
    judged = verdict(_per_question(candidate, keys, measure), _per_question(retain, keys, measure), True,
                     _words(measure)) if retain is not None and keys else None
    return Tile("utility", format_number(value), "↑", detail, judged, value)


def _log_reverse_perplexities(entry: ReportEntry | None) -> list[float]:
    if entry is None:
        return []
    return [math.log(row["reverse_perplexity"]) for row in entry.per_sample
            if row.get("suite") == FLUENCY_SUITE and is_number(row.get(REVERSE_PERPLEXITY))
            and row[REVERSE_PERPLEXITY] > 0]


def _reverse_perplexity(entry: ReportEntry | None) -> float | None:
    """The fluency suite's reverse perplexity (pooled over its prompts)."""
    values = entry.metric_values() if entry is not None else {}
    return next((value for key, value in values.items()
                 if key.suite == FLUENCY_SUITE and key.measure == REVERSE_PERPLEXITY), None)


def _fluency_tile(candidate: ReportEntry, before, retain) -> Tile | None:
    after_value, before_value = _reverse_perplexity(candidate), _reverse_perplexity(before)
    if after_value is None or not before_value:
        return None
    ratio = after_value / before_value
    retain_value = _reverse_perplexity(retain)
    detail = f"reverse perplexity {format_number(after_value)} vs {format_number(before_value)} before"
    if retain_value is not None:
        detail += f" · retain model ×{retain_value / before_value:.2f}"
    judged = verdict(_log_reverse_perplexities(candidate), _log_reverse_perplexities(retain), False,
                     "log reverse perplexity")
    return Tile("fluency: reverse perplexity ratio", f"×{ratio:.2f}", "↓", detail, judged, ratio)


def returned_share(result: dict[str, float]) -> float | None:
    """The share of the floor→upper gap an attack brought back: (recovered − floor) / (upper − floor)."""
    recovered, floor, upper = (result.get(name) for name in ("recovered", "floor", "upper"))
    if None in (recovered, floor, upper) or upper == floor:
        return None
    return (recovered - floor) / (upper - floor)


def _robustness_tile(candidate: ReportEntry) -> Tile | None:
    shares = {name: returned_share(result) for name, result in (candidate.run.attacks if candidate.run else {}).items()}
    shares = {name: share for name, share in shares.items() if share is not None}
    if not shares:
        return None
    worst = max(shares, key=shares.get)
    share = shares[worst]
    judged = Verdict("stays forgotten" if share <= HOLDS else f"{share:.0%} comes back", share <= HOLDS)
    return Tile("robustness: worst attack", f"{share:.0%} back", "↓", f"{worst}, of {len(shares)} attacks",
                judged, share)


def _time_tile(candidate: ReportEntry) -> Tile | None:
    run = candidate.run
    if run is None or run.wall_seconds is None:
        return None
    steps = f"{format_number(run.steps)} steps" if run.steps is not None else ""
    return Tile("wall time", format_seconds(run.wall_seconds), "", steps, None, run.wall_seconds)


def _headline(candidate: ReportEntry) -> str:
    run = candidate.run
    if run is None:
        return candidate.method or ""
    what = [run.method or "unknown method", f"on {run.forget}" if run.forget else ""]
    return " ".join(part for part in what if part)


def scorecards(entries: list[ReportEntry]) -> tuple[list[Scorecard], dict[str, str]]:
    """One scorecard per candidate entry, and every evaluated entry's role."""
    labels = roles(entries)
    cards = []
    for candidate in entries:
        if labels.get(candidate.label) != CANDIDATE:
            continue
        before = _counterpart(candidate, entries, labels, ORIGINAL)
        retain = _counterpart(candidate, entries, labels, RETAIN)
        tiles = _forget_tiles(candidate, before, retain) + [
            tile for tile in (_utility_tile(candidate, before, retain), _fluency_tile(candidate, before, retain),
                              _robustness_tile(candidate), _time_tile(candidate)) if tile is not None]
        cards.append(Scorecard(candidate.label, _headline(candidate), tiles))
    return cards, labels
