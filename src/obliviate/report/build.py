"""Assemble the report's sections from loaded entries."""

from __future__ import annotations

from obliviate.report import plots
from obliviate.report.document import Chart, Report, Section
from obliviate.report.entries import ReportEntry, RunInfo, runs_of
from obliviate.report.metrics import (
    EFFICACY,
    OTHER,
    UTILITY,
    format_number,
    format_seconds,
)
from obliviate.report.scorecard import NOISE_SE, Scorecard, scorecards
from obliviate.report.scores import Score, forgetting_score, utility_score
from obliviate.report.tables import (
    attack_tables,
    entity_tables,
    entries_table,
    example_tables,
    files_table,
    metrics_tables,
    runs_table,
    short_name,
)

METRICS_INTRO = (
    "One row per metric, one column per evaluation, one table per axis: efficacy = the forget target (forget and "
    "probe sets, forget quality); privacy = membership inference and privleak; utility = what must be kept "
    "(retain, neighbours, world facts, multiple choice, model utility); fluency; other = metrics the report does "
    "not classify; context = sample counts and chance levels. Better: ↓ lower, ↑ higher, ≈ the value to approach. "
    "On forget sets the truth ratio is mean(min(TR, 1/TR)), which rises as the model stops preferring the true answer."
)
SCORECARD_NOTE = (
    "Per unlearned model: what is left of the forget target, what was kept, fluency, whether attacks bring it "
    "back, and the time it took, each against the model before unlearning and the retain model (never trained on "
    "the forget target). A verdict is \"within noise\" when the difference from the retain model is at most "
    f"{NOISE_SE:g} standard errors of the per-question means."
)


def _run_sentence(run: RunInfo) -> str:
    what = f"{run.method or 'An unknown method'} unlearned {run.forget or 'an unnamed forget set'}"
    model = f" from {short_name(run.model)}" if run.model else ""
    retain = f", keeping {run.retain}" if run.retain else ""
    steps = f" in {format_number(run.steps)} steps" if run.steps is not None else ""
    took = f" ({format_seconds(run.wall_seconds)})" if run.wall_seconds is not None else ""
    return f"{run.name}: {what}{model}{retain}{steps}{took}."


def _at_a_glance(runs: list[RunInfo], cards: list[Scorecard], tradeoff: Chart | None) -> Section:
    sentences = [_run_sentence(run) for run in runs] or ["Evaluations only: no run directory was given."]
    return Section("glance", "At a glance", "\n".join(sentences), scorecards=cards,
                   note=SCORECARD_NOTE if cards else "", charts=[tradeoff] if tradeoff else [])


def _inputs(entries: list[ReportEntry], runs: list[RunInfo], roles: dict[str, str],
            forgetting: Score | None, utility: Score | None) -> Section:
    tables = [entries_table(entries, roles, forgetting, utility)] + ([runs_table(runs)] if runs else [])
    return Section("inputs", "Evaluations and runs", tables=tables + [files_table(entries, runs)])


def _charts(evaluated: list[ReportEntry], runs: list[RunInfo]) -> Section:
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
        plots.loss_curves(runs),
    ]
    return Section("charts", "Charts", charts=[chart for chart in charts if chart is not None])


def build_report(entries: list[ReportEntry], title: str | None = None, tradeoff: Chart | None = None) -> Report:
    """The report's sections; `tradeoff` replaces the forgetting-vs-utility scatter (TOFU's own chart)."""
    evaluated = [entry for entry in entries if entry.metrics]
    runs = runs_of(entries)
    forgetting, utility = forgetting_score(evaluated), utility_score(evaluated)
    cards, roles = scorecards(evaluated)
    tradeoff = tradeoff or plots.tradeoff_scatter(evaluated, forgetting, utility, roles)
    sections = [
        _at_a_glance(runs, cards, tradeoff),
        _charts(evaluated, runs),
        Section("metrics", "All metrics", METRICS_INTRO, tables=metrics_tables(evaluated), folded=True),
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
        _inputs(entries, runs, roles, forgetting, utility),
    ]
    methods = list(dict.fromkeys(run.method for run in runs if run.method))
    default_title = "Unlearning report" + (f": {', '.join(methods)}" if methods else "")
    subtitle = f"{len(evaluated)} evaluation{'s' * (len(evaluated) != 1)}, {len(runs)} run{'s' * (len(runs) != 1)}"
    shown = [section for section in sections if section.tables or section.charts or section.scorecards]
    return Report(title or default_title, subtitle, shown)
