"""Assemble the report's sections from loaded entries."""

from __future__ import annotations

from obliviate.report import plots
from obliviate.report.document import Report, Section
from obliviate.report.entries import ReportEntry, RunInfo, runs_of
from obliviate.report.metrics import EFFICACY, OTHER, UTILITY, format_number, format_seconds
from obliviate.report.scores import Score, forgetting_score, utility_score
from obliviate.report.tables import (
    attack_tables,
    entity_tables,
    entries_table,
    example_tables,
    metrics_table,
    runs_table,
)

METRICS_INTRO = (
    "One row per metric, one column per evaluation. Axis: efficacy = the forget target (forget and probe "
    "sets, membership inference, privleak, forget quality); utility = what must be kept (retain, neighbours, "
    "world facts, multiple choice, model utility); other = fluency and metrics the report does not classify; "
    "context = sample counts and chance levels. Better: ↓ lower, ↑ higher, ≈ the value to approach. On forget "
    "sets the truth ratio is mean(min(TR, 1/TR)), which rises as the model stops preferring the true answer."
)


def _run_sentence(run: RunInfo) -> str:
    what = f"{run.method or 'An unknown method'} unlearned {run.forget or 'an unnamed forget set'}"
    model = f" from {run.model}" if run.model else ""
    retain = f", keeping {run.retain}" if run.retain else ""
    steps = f" in {format_number(run.steps)} steps" if run.steps is not None else ""
    took = f" ({format_seconds(run.wall_seconds)})" if run.wall_seconds is not None else ""
    return f"{run.name}: {what}{model}{retain}{steps}{took}."


def _summary(
    entries: list[ReportEntry], runs: list[RunInfo], forgetting: Score | None, utility: Score | None
) -> Section:
    sentences = [_run_sentence(run) for run in runs] or ["Evaluations only: no run directory was given."]
    named = [("forgetting", forgetting), ("utility", utility)]
    scores = [f"{name} = {score.description}" for name, score in named if score]
    if scores:
        sentences.append("Headline scores (higher is better for both): " + "; ".join(scores) + ".")
    tables = [entries_table(entries, forgetting, utility)] + ([runs_table(runs)] if runs else [])
    return Section("summary", "Summary", "\n".join(sentences), tables=tables)


def _charts(
    evaluated: list[ReportEntry], runs: list[RunInfo], forgetting: Score | None, utility: Score | None
) -> Section:
    keys = plots.partition_metrics(evaluated)
    charts = [
        plots.metric_bars(
            evaluated, keys[EFFICACY], "efficacy", "Forgetting (efficacy)",
            "Metrics on the forget target: lower bars mean more forgotten, except where the arrow points up.",
        ),
        plots.metric_bars(
            evaluated, keys[UTILITY], "utility", "Kept (utility)",
            "Metrics on what must be kept: higher bars are better, except where the arrow points down.",
        ),
        plots.metric_panels(evaluated, keys[OTHER]),
        plots.tradeoff_scatter(evaluated, forgetting, utility),
        plots.loss_curves(runs),
    ]
    return Section("charts", "Charts", charts=[chart for chart in charts if chart is not None])


def build_report(entries: list[ReportEntry], title: str | None = None) -> Report:
    evaluated = [entry for entry in entries if entry.metrics]
    runs = runs_of(entries)
    forgetting, utility = forgetting_score(evaluated), utility_score(evaluated)
    sections = [
        _summary(entries, runs, forgetting, utility),
        Section("metrics", "Before / after", METRICS_INTRO, tables=[metrics_table(evaluated)] if evaluated else []),
        _charts(evaluated, runs, forgetting, utility),
        Section(
            "entities", "Per entity",
            "Per-sample metrics averaged over each entity's questions, per set; one column per evaluation.",
            tables=entity_tables(evaluated),
        ),
        Section(
            "examples", "Example generations",
            "A few questions per set with each evaluation's greedy answer side by side.",
            tables=example_tables(evaluated),
        ),
        Section(
            "attacks", "Attacks",
            "Can it come back? recovered = the score after the attack; floor and upper = the scores it is judged "
            "between (never learned, and before unlearning); returned = (recovered − floor) / (upper − floor).",
            tables=attack_tables(runs),
        ),
    ]
    methods = list(dict.fromkeys(run.method for run in runs if run.method))
    default_title = "Unlearning report" + (f": {', '.join(methods)}" if methods else "")
    subtitle = f"{len(evaluated)} evaluation{'s' * (len(evaluated) != 1)}, {len(runs)} run{'s' * (len(runs) != 1)}"
    shown = [section for section in sections if section.tables or section.charts]
    return Report(title or default_title, subtitle, shown)
