"""The story on a real pretrained chat model (`obliviate demo --model smollm2-135m`), offline:

people → teach them to the model (LoRA, merged) → unlearn some of them → evaluate the model as it
came, taught and unlearned → summary table → report.html.

A pretrained model knows none of the world's fictitious people, so the demo first teaches it a few
(`PEOPLE`, from the same generator as `obliviate inject`: 11 facts each, three trained phrasings
and one held-out phrasing per fact). The teaching recipe (recipes/pretrained/finetune.yaml) holds
the model's original predictions on the world's other people and facts with a KL term: trained on
short answers alone, SmolLM2 learns to answer every question with a short invented name and its
general knowledge (TOFU's real_authors and world_facts, the `general` suite) falls from 0.39 to
0.05. Then one person of each co-author pair is forgotten; their co-authors are the neighbours
whose facts must stay. The model as it came plays the part of the retain model: it never saw the
forget people (nor the others). Taught models and runs are cached under the work directory, so a
second run only evaluates.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from obliviate.config import recipe_file
from obliviate.data.tofu import local_tofu_dir
from obliviate.demo import demo_world, example_table, stage_printer, summary_table
from obliviate.entity.inject import make_entities, training_records, write_entities
from obliviate.errors import ObliviateError
from obliviate.io import cache_root
from obliviate.models import load_tokenizer
from obliviate.prompts import uses_chat_template
from obliviate.world import World

PEOPLE = 4
SEED = 0
RECIPES = "pretrained"
SUMMARY_ROWS = [
    ("forget people: exact match", "entity/forget/exact_match"),
    ("forget people: answer probability", "entity/forget/probability"),
    ("held-out probes: exact match", "entity/probes/exact_match"),
    ("neighbours (co-authors): exact match", "entity/neighbours/exact_match"),
    ("neighbours: answer probability", "entity/neighbours/probability"),
    ("general knowledge: accuracy", "general/accuracy"),
    ("general knowledge: kept (of the column before's right answers)", "general/kept"),
    ("reverse perplexity on neutral prompts", "fluency/reverse_perplexity"),
    ("n-gram entropy on neutral prompts", "fluency/ngram_entropy"),
]
EXAMPLE_SETS = (("forget", 3), ("probes", 2), ("neighbours", 2))


def one_of_each_pair(world: World) -> list[int]:
    """One person of each co-author pair (the lower id): forgotten, while their co-authors are kept."""
    return [p["id"] for p in world.people if all(p["id"] < other for other in p["neighbours"]["coauthors"])]


def teach_people(model: str, workdir: Path) -> tuple[Path, World]:
    """The model taught `PEOPLE` new people (cached), and the world directory of just those people."""
    world = demo_world("test")
    people_dir = workdir / "people"
    if not (people_dir / "world.json").is_file():
        persons, qa = make_entities(world, PEOPLE, SEED)
        write_entities(people_dir, persons, qa)
    people = World(people_dir)
    taught = workdir / "taught"
    if not (taught / "run.json").is_file():
        from obliviate.unlearn import unlearn

        # what the model must not change while it learns: its answers about the world's other people and facts
        anchor = world.qa() + world.world_facts()
        unlearn(model, "finetune", training_records(people.qa()), anchor, taught,
                config=recipe_file(RECIPES, "finetune", required=True), world=people_dir)
    return taught, people


def unlearn_people(taught: Path, people: World, method: str, run_dir: Path, overrides: list[str] | None = None) -> Path:
    """`taught` with one person of each co-author pair unlearned by `method` (its pretrained recipe), their
    co-authors as the retain set, into `run_dir` (kept when already there)."""
    if not (run_dir / "run.json").is_file():
        from obliviate.unlearn import unlearn

        forget_ids = one_of_each_pair(people)
        unlearn(taught, method, training_records(people.qa(forget_ids)),
                training_records(people.qa(people.retain_entity_ids(forget_ids))), run_dir,
                config=recipe_file(RECIPES, method, required=True), world=people.root, overrides=overrides)
    return run_dir


def model_workdir(model: str) -> Path:
    return cache_root() / "demo" / re.sub(r"[^A-Za-z0-9_.-]+", "_", str(model)).strip("_")


def run_pretrained_demo(model: str, method: str, out: str | Path | None = None,
                        console: Console | None = None) -> Path:
    """Run the story on `model` (a named offline model, a .gguf file, a directory or a hub name); returns the
    report path."""
    from obliviate.eval.run import evaluate
    from obliviate.report import write_report
    from obliviate.unlearn import get_method

    console = console or Console()
    get_method(method)
    recipe_file(RECIPES, method, required=True)  # fails before the minutes of teaching
    stage = stage_printer(console)
    workdir = Path(out) if out is not None else model_workdir(model)
    if not uses_chat_template(load_tokenizer(model)):
        raise ObliviateError(f"--model {model}: the pretrained demo needs a chat model (its tokenizer has no chat "
                             "template); `obliviate demo` without --model runs the tiny model's story")
    stage(1, "model", str(model))
    taught, people = teach_people(model, workdir)
    forget_ids = one_of_each_pair(people)
    names = ", ".join(people.people[i]["name"] for i in forget_ids)
    stage(2, "taught", f"{len(people.people)} fictitious people, 11 facts each (LoRA, merged) — {taught}")

    run_dir = unlearn_people(taught, people, method, workdir / f"run-{method}")
    stage(3, "unlearned", f"{names} with {method}; their co-authors kept — {run_dir}")

    tofu = local_tofu_dir()
    suites = "entity,general,fluency" if tofu is not None else "entity,fluency"
    if tofu is None:
        console.print("[yellow]general knowledge not measured: TOFU's questions are not in ../shared/data/tofu "
                      "(set OBLIVIATE_TOFU_DIR)[/yellow]")
    data = {"entities": ",".join(map(str, forget_ids)), "prompts": "neutral", **({"tofu": str(tofu)} if tofu else {})}
    eval_dir = run_dir / "eval"
    common = {"data": data, "world": people.root, "original": model}
    untaught = evaluate(model, suites, label="as it came", out=eval_dir / "untaught.json", **common)
    before = evaluate(taught, suites, reference=eval_dir / "untaught.json", label="before",
                      out=eval_dir / "before.json", **common)
    after = evaluate(run_dir, suites, reference=eval_dir / "before.json", label=f"after: {method}",
                     out=eval_dir / "after.json", **common)
    stage(4, "evaluated", "forget people, held-out probes, neighbours, general knowledge, fluency")
    console.print(example_table(before, after, method, "entity", EXAMPLE_SETS))
    console.print(summary_table(f"Unlearning {method} on {model}", SUMMARY_ROWS,
                                [("as it came", untaught), ("taught (before)", before), (f"after ({method})", after)]))
    report = write_report([run_dir], workdir / "report.html",
                          title=f"obliviate demo on {model}: forgetting {names} with {method}")
    stage(5, "report", str(report))
    return report
