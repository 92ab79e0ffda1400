"""The whole story on the embedded default, offline:

world → retain model (the tiny recipe without the forget people) → full model (the retain model
trained further on the whole world, so it learns the forget people by fine-tuning, as TOFU's
models learn their fictitious authors) → unlearn →
evaluate full, unlearned and retain models → summary table → report.html. Models and runs are
cached, so a second run only evaluates; `obliviate demo --preset test` from an empty cache takes
under 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from obliviate.config import recipe_file
from obliviate.io import cache_root
from obliviate.world import World, build_world
from obliviate.world.build import WORLD_FORMAT

DEFAULT_METHOD = "npo_gd"
SUITES = "world,fluency"
# (label, metric key in the eval JSON); which way is good is what the suite declares (eval "meanings")
SUMMARY_ROWS = [
    ("forget set: exact match", "world/forget/exact_match"),
    ("forget set: answer probability", "world/forget/probability"),
    ("held-out probes: exact match", "world/probes/exact_match"),
    ("neighbours: exact match", "world/neighbours/exact_match"),
    ("other people: exact match", "world/retain/exact_match"),
    ("world facts: exact match", "world/world_facts/exact_match"),
    ("craft MCQ accuracy", "world/mcq/accuracy"),
    ("forget quality (KS p vs retain model)", "world/forget_quality"),
    ("model utility", "world/model_utility"),
    ("MIA AUC (LOSS), forget vs retain people", "world/auc_loss"),
    ("reverse perplexity of answers", "fluency/reverse_perplexity"),
]


def demo_world(preset_name: str, seed: int = 0) -> World:
    """The world the demo uses for a preset, built once into the cache."""
    from obliviate.models.tiny import get_preset

    preset = get_preset(preset_name)
    path = cache_root() / "worlds" / f"seed{seed}-n{preset.world_entities}-format{WORLD_FORMAT}"
    if not (path / "world.json").is_file():
        build_world(path, seed=seed, entities=preset.world_entities)
    return World(path)


def _metric(document: dict, key: str, part: str = "metrics"):
    suite, _, name = key.partition("/")
    return document[part].get(suite, {}).get(name)


def _direction(document: dict, key: str) -> str:
    from obliviate.report.metrics import MetricInfo  # the report's modules are not needed to build the world

    meaning = _metric(document, key, "meanings")
    return "" if meaning is None else MetricInfo(meaning["axis"], meaning["better"]).arrow


def _fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.3f}"


def summary_table(title: str, rows: list[tuple[str, str]], columns: list[tuple[str, dict]]) -> Table:
    """One row per (label, metric key), one column per (title, eval JSON), and which way is good."""
    table = Table(title=title)
    for column in ("metric", "good", *(name for name, _ in columns)):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for label, key in rows:
        direction = next((arrow for _, doc in columns if (arrow := _direction(doc, key))), "")
        table.add_row(label, direction, *(_fmt(_metric(doc, key)) for _, doc in columns))
    return table


EXAMPLE_SETS = (("forget", 3), ("probes", 1), ("neighbours", 2), ("world_facts", 2))


def example_table(before: dict, after: dict, method: str, suite: str = "world",
                  sets: tuple[tuple[str, int], ...] = EXAMPLE_SETS) -> Table:
    """A few questions answered by the model before and after unlearning."""
    answers_after = {(r["set"], r["index"]): r.get("generation", "") for r in after["per_sample"]
                     if r["suite"] == suite}
    table = Table(title="What the model answers")
    for column in ("set", "question", "reference", "before", f"after ({method})"):
        table.add_column(column)
    for set_name, count in sets:
        rows = [r for r in before["per_sample"] if r["suite"] == suite and r["set"] == set_name][:count]
        for r in rows:
            table.add_row(set_name, r["question"], r["answer"], r.get("generation", ""),
                          answers_after[(set_name, r["index"])])
    return table


def stage_printer(console: Console):
    """stage(number, title, detail): prints one numbered stage of a demo with the seconds since this call."""
    started = time.perf_counter()

    def stage(number: int, title: str, detail: str) -> None:
        console.print(f"[bold]{number}. {title}[/bold]  {detail}  [dim]({time.perf_counter() - started:.0f} s)[/dim]")

    return stage


def run_demo(preset_name: str = "test", method: str = DEFAULT_METHOD, out: str | Path | None = None,
             console: Console | None = None) -> Path:
    """Run the story; returns the report path."""
    from obliviate.eval.run import evaluate
    from obliviate.models.tiny import build_retain_and_full
    from obliviate.report import write_report
    from obliviate.unlearn import get_method, unlearn

    console = console or Console()
    get_method(method)  # an unknown method, then a method without a recipe, fails before any training
    recipe = recipe_file("methods", method, required=True)
    stage = stage_printer(console)

    world = demo_world(preset_name)
    forget_ids = world.forget_entity_ids(0.1)
    names = ", ".join(world.people[i]["name"] for i in forget_ids)
    workdir = Path(out) if out is not None else cache_root() / "demo" / preset_name
    stage(1, "world", f"{len(world.people)} fictitious people, {len(world.domain_names)} crafts — {world.root}")
    retain, full = build_retain_and_full(world.root, preset_name, forget_ids)
    stage(2, "retain model", f"trained from scratch on the world without {names} — {retain}")
    stage(3, "full model", f"the retain model trained further on the whole world, {names} included — {full}")
    run_dir = workdir / f"run-{method}"
    if not (run_dir / "run.json").is_file():
        # The retain set holds the other people, the world's general facts and the crafts (their drill
        # questions and expository texts), so all three are kept.
        crafts = world.drill_qa() + [text for craft in world.domain_names
                                     for text in world.domain_texts(craft, ("expository",))]
        retain_set = world.qa(world.retain_entity_ids(forget_ids)) + world.world_facts() + crafts
        unlearn(full, method, "world:forget", retain_set, run_dir, config=recipe,
                world=world.root)
    stage(4, "unlearned", f"{names} with {method} — {run_dir}")

    eval_dir = run_dir / "eval"
    retain_eval = evaluate(retain, SUITES, world=world.root, original=full, label="retain model",
                           out=eval_dir / "retain.json")
    before = evaluate(full, SUITES, world=world.root, original=full, reference=eval_dir / "retain.json",
                      label="before", out=eval_dir / "before.json")
    after = evaluate(run_dir, SUITES, world=world.root, original=full, reference=eval_dir / "retain.json",
                     label=f"after: {method}", out=eval_dir / "after.json")
    stage(5, "evaluated", "forget set, held-out probes, neighbours, other people, world facts, crafts, "
                          "membership inference, fluency")
    console.print(example_table(before, after, method))
    console.print(summary_table(f"Unlearning {method}: before → after (retain model = never saw the forget people)",
                                SUMMARY_ROWS, [("before", before), (f"after ({method})", after),
                                               ("retain model", retain_eval)]))
    report = write_report([run_dir], workdir / "report.html",
                          title=f"obliviate demo: forgetting {names} with {method}")
    stage(6, "report", str(report))
    return report
