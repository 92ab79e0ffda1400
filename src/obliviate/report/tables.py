"""The report's tables, built from entries as formatted cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from obliviate.report.document import Table
from obliviate.report.entries import ReportEntry, RunInfo
from obliviate.report.metrics import (
    CONTEXT,
    EFFICACY,
    FLUENCY,
    OTHER,
    PRIVACY,
    UTILITY,
    describe_metric,
    format_number,
    format_seconds,
    is_number,
    metric_labels,
)
from obliviate.report.scorecard import CANDIDATE, ORIGINAL, RETAIN, returned_share
from obliviate.report.scores import Score

EXAMPLES_PER_SET = 3
MAX_GENERATION_CHARS = 240
# Per-sample fields that are bookkeeping, not measurements.
NON_METRIC_FIELDS = {"index"}
# The per-entity tables show these per-sample metrics (what an entity still gives away).
ENTITY_METRICS = ("exact_match", "rouge_l_recall", "probability")
MAX_ENTITIES_PER_TABLE = 40
ASPECT_ORDER = [EFFICACY, PRIVACY, UTILITY, FLUENCY, OTHER, CONTEXT]
ROLE_NAMES = {RETAIN: "retain model", ORIGINAL: "before unlearning", CANDIDATE: "unlearned"}


def short_name(model: str | None) -> str:
    """A model as the page shows it: a local path by its last folder or file name, a hub name as it is."""
    if not model:
        return "–"
    path = Path(model)
    return path.name if path.is_absolute() or path.exists() else model


def _short_source(entry: ReportEntry) -> str:
    """The eval file relative to its run directory (`eval/after.json`), else its file name."""
    if entry.source is None:
        return "–"
    if entry.run is not None and entry.source.resolve().is_relative_to(entry.run.path.resolve()):
        return str(entry.source.resolve().relative_to(entry.run.path.resolve().parent))
    return entry.source.name


def entries_table(entries: list[ReportEntry], roles: dict[str, str], forgetting: Score | None,
                  utility: Score | None) -> Table:
    def score(which: Score | None, label: str) -> str:
        return format_number(which.values.get(label)) if which else "–"

    rows = [
        [
            entry.label,
            ROLE_NAMES.get(roles.get(entry.label, ""), "–"),
            entry.method or "–",
            short_name(entry.model),
            ", ".join(entry.metrics) or "–",
            _short_source(entry),
            score(forgetting, entry.label),
            score(utility, entry.label),
            format_seconds(entry.seconds),
        ]
        for entry in entries
    ]
    columns = ["evaluation", "role", "method", "model", "suites", "file", "forgetting ↑", "utility ↑", "eval time"]
    title = "Evaluations" + (f" (forgetting = {forgetting.description}; utility = {utility.description})"
                             if forgetting and utility else "")
    return Table(columns, rows, title=title, numbers_from=6)


def runs_table(runs: list[RunInfo]) -> Table:
    def losses(run: RunInfo) -> str:
        return ", ".join(f"{name} {format_number(value)}" for name, value in run.final_losses.items()) or "–"

    def memory(run: RunInfo) -> str:
        return f"{format_number(run.peak_memory_mb)} MB" if run.peak_memory_mb is not None else "–"

    rows = [
        [
            run.name,
            run.method or "–",
            short_name(run.model),
            run.forget or "–",
            run.retain or "–",
            losses(run),
            format_number(run.steps),
            format_seconds(run.wall_seconds),
            memory(run),
        ]
        for run in runs
    ]
    columns = ["run", "method", "model", "forget", "retain", "final losses", "steps", "wall time", "peak memory"]
    return Table(columns, rows, title="Unlearning runs", numbers_from=6)


def files_table(entries: list[ReportEntry], runs: list[RunInfo]) -> Table:
    """Where everything came from, in full: each evaluation's file and model, each run's directory and model."""
    rows = [[entry.label, "eval file", str(entry.source)] for entry in entries if entry.source is not None]
    rows += [[entry.label, "model", entry.model] for entry in entries if entry.model]
    rows += [[run.name, "run directory", str(run.path)] for run in runs]
    rows += [[run.name, "started from", run.model] for run in runs if run.model]
    return Table(["name", "what", "full path"], rows, title="Files", numbers_from=3, folded=True)


def metrics_tables(entries: list[ReportEntry]) -> list[Table]:
    """Per axis (efficacy, privacy, utility, fluency, other, context): one row per metric, one column per entry,
    each in the order the evaluations list them."""
    values = [entry.metric_values() for entry in entries]
    keys = list(dict.fromkeys(key for entry_values in values for key in entry_values))
    labels = metric_labels(keys)
    tables = []
    for aspect in ASPECT_ORDER:
        rows = [
            [labels[key], describe_metric(key).arrow or "–"]
            + [format_number(entry_values.get(key)) for entry_values in values]
            for key in keys if describe_metric(key).aspect == aspect
        ]
        if rows:
            tables.append(Table(["metric", "better"] + [entry.label for entry in entries], rows, title=aspect,
                                numbers_from=2))
    return tables


def _entity_metric_names(rows: list[dict[str, Any]]) -> list[str]:
    """The headline per-sample metrics the rows carry, else the first few numeric fields."""
    names = (name for row in rows for name, value in row.items() if is_number(value) and name not in NON_METRIC_FIELDS)
    present = list(dict.fromkeys(names))
    headline = [name for name in ENTITY_METRICS if name in present]
    return headline or present[: len(ENTITY_METRICS)]


def _mean_of(rows: list[dict[str, Any]], name: str) -> float | None:
    values = [float(row[name]) for row in rows if is_number(row.get(name))]
    return sum(values) / len(values) if values else None


def entity_tables(entries: list[ReportEntry]) -> list[Table]:
    """Per set, one row per entity (alphabetically, at most MAX_ENTITIES_PER_TABLE): the mean of each
    headline per-sample metric over the entity's questions, one column per entry."""
    grouped: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = {}  # set -> entity -> entry position -> rows
    for position, entry in enumerate(entries):
        for row in entry.per_sample:
            if row.get("entity") is not None:
                by_entity = grouped.setdefault(str(row.get("set", "?")), {})
                by_entity.setdefault(str(row["entity"]), {}).setdefault(position, []).append(row)
    tables = []
    for set_name, by_entity in grouped.items():
        all_rows = [row for by_position in by_entity.values() for rows in by_position.values() for row in rows]
        metric_names = _entity_metric_names(all_rows)
        present = sorted({position for by_position in by_entity.values() for position in by_position})
        shown = sorted(by_entity)[:MAX_ENTITIES_PER_TABLE]
        cells = [
            [entity, str(max(len(rows) for rows in by_entity[entity].values()))]
            + [
                format_number(_mean_of(by_entity[entity].get(position, []), name))
                for name in metric_names
                for position in present
            ]
            for entity in shown
        ]
        columns = ["entity", "questions"] + [entries[position].label for _ in metric_names for position in present]
        groups = [("", 2)] + [(name, len(present)) for name in metric_names]
        title = set_name if len(shown) == len(by_entity) else f"{set_name} (first {len(shown)} of {len(by_entity)})"
        tables.append(Table(columns, cells, title=title, column_groups=groups))
    return tables


def _shorten(text: Any) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= MAX_GENERATION_CHARS else text[: MAX_GENERATION_CHARS - 1] + "…"


def example_tables(entries: list[ReportEntry]) -> list[Table]:
    """Per set, a few questions with each entry's generation side by side.

    Generations come from `examples`, then from `per_sample` rows. Shown first are the questions the
    most entries answered, so the columns line up, and among those the ones whose answer changed.
    """
    answers: dict[tuple[str, str], dict[int, str]] = {}  # (set, question) -> entry position -> generation
    references: dict[tuple[str, str], str] = {}
    for position, entry in enumerate(entries):
        for row in entry.examples + entry.per_sample:
            if "question" not in row or "generation" not in row:
                continue
            key = (str(row.get("set", "?")), str(row["question"]))
            answers.setdefault(key, {}).setdefault(position, _shorten(row["generation"]))
            references.setdefault(key, _shorten(row.get("reference") or row.get("answer")))
    sets = list(dict.fromkeys(set_name for set_name, _ in answers))
    present = [position for position, entry in enumerate(entries) if entry.examples or entry.per_sample]
    tables = []
    for set_name in sets:
        questions = [key for key in answers if key[0] == set_name]
        shown = sorted(questions, key=lambda key: (-len(answers[key]), len(set(answers[key].values())) == 1))
        shown = shown[:EXAMPLES_PER_SET]
        rows = [
            [_shorten(key[1]), references[key]] + [answers[key].get(position, "–") for position in present]
            for key in shown
        ]
        columns = ["question", "reference"] + [entries[position].label for position in present]
        tables.append(Table(columns, rows, title=set_name, numbers_from=len(columns)))
    return tables


def attack_tables(runs: list[RunInfo]) -> list[Table]:
    """Per run with attacks: each attack's numbers, and the share of the floor→upper gap that came back."""
    tables = []
    for run in runs:
        if not run.attacks:
            continue
        names = list(dict.fromkeys(name for result in run.attacks.values() for name in result))
        rows = []
        for attack, result in run.attacks.items():
            share = returned_share(result)
            returned = f"{100 * share:.0f}%" if share is not None else "–"
            rows.append([attack] + [format_number(result.get(name)) for name in names] + [returned])
        title = f"{run.name} ({run.method or 'unknown method'})"
        tables.append(Table(["attack"] + names + ["returned"], rows, title=title))
    return tables
