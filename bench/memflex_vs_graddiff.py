"""MemFlex against GradDiff on a pretrained chat model: KnowUnDo's claim (methods.md §3), as KnowUnDo runs it.

    PYTHONPATH=src python bench/memflex_vs_graddiff.py [--model smollm2-135m] [--seeds 0,1,2]
        [--work DIR] [--out bench/results/memflex_vs_graddiff]

1. people: the pretrained demo's four fictitious people (`obliviate inject`'s generator; 11 facts each, 5
   private and 6 public, three trained phrasings and one held-out phrasing per fact);
2. KnowUnDo's fine-tuning step: the model learns all their facts with a LoRA adapter, kept unmerged
   (recipes/pretrained/finetune.yaml: r 16 on every linear layer, a KL term on the world's other people and
   facts to keep the model's general knowledge);
3. each seed: unlearn the private facts and keep the public ones, from that adapter: MemFlex localises on it
   and trains only its located A / B matrices (recipes/pretrained/memflex.yaml); GradDiff trains all of
   it (recipes/pretrained/graddiff_adapter.yaml); the same loss, γ 0.4 forget / α 2 retain, as KnowUnDo, each
   with the lr and epochs that reach unlearn success ≥ 0.9 (the recipes say how they were chosen);
4. scored as KnowUnDo scores: unlearn and retention success on the held-out phrasings, relative to the taught
   model (eval/suites/knowundo.py), and the `general` suite (TOFU's real authors and world facts) kept.

The taught adapter and the runs are cached in --work. Writes memflex_vs_graddiff.{md,json} to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import mean, pstdev

from obliviate.config import recipe_file
from obliviate.data.tofu import local_tofu_dir
from obliviate.demo import demo_world
from obliviate.demo_pretrained import PEOPLE, SEED
from obliviate.entity import knowundo_layout
from obliviate.entity.inject import make_entities, training_records, write_entities
from obliviate.errors import ObliviateError
from obliviate.eval.run import evaluate
from obliviate.io import atomic_write_json, atomic_write_text, cache_root
from obliviate.unlearn import unlearn
from obliviate.world import World

REPO = Path(__file__).resolve().parents[1]
RECIPES = "pretrained"
# name: (method, recipe)
RUNS = {"memflex": ("memflex", "memflex"), "graddiff": ("graddiff", "graddiff_adapter")}
METRICS = ("unlearn_success", "retention_success", "general_kept")
TARGET = 0.9  # KnowUnDo's unlearn success target: "at equal unlearn success (≥ 0.90)"


def teach(model: str, work: Path, recipe: str | Path | None = None) -> tuple[Path, World]:
    """The people's world, and the LoRA adapter (unmerged) with which `model` learned all their facts."""
    world = demo_world("test")
    people_dir = work / "people"
    if not (people_dir / "world.json").is_file():
        write_entities(people_dir, *make_entities(world, PEOPLE, SEED))
    people = World(people_dir)
    adapter = work / "taught-adapter"
    if not (adapter / "run.json").is_file():
        anchor = world.qa() + world.world_facts()  # what the model keeps while it learns them (see the recipe)
        unlearn(model, "finetune", training_records(people.qa()), anchor, adapter,
                config=recipe or recipe_file(RECIPES, "finetune", required=True), world=people_dir, save_adapter=True)
    return adapter, people


def compare(model: str, adapter: Path, people: World, work: Path, seeds: list[int], runs: dict = RUNS,
            recipes: str = RECIPES, general: bool = True, overrides: list[str] | None = None) -> list[dict]:
    """One row per run and seed: unlearn / retention success, general knowledge kept, located fraction and
    trainable parameters. Runs already in `work` are not repeated."""
    layout = work / "knowundo_people.json"
    atomic_write_json(layout, knowundo_layout(people, [p["id"] for p in people.people]))
    tofu = local_tofu_dir() if general else None
    suites = "knowundo" + (",general" if tofu else "")
    data = {"knowundo": str(layout), **({"tofu": str(tofu)} if tofu else {})}
    before_file = work / "eval-taught.json"
    if not before_file.is_file():
        evaluate(str(adapter), suites, data=data, world=people.root, label="taught", out=before_file)
    unlearn_set, retention_set = (training_records(people.qa(visibility=part)) for part in ("private", "public"))
    rows = []
    for name, (method, recipe) in runs.items():
        for seed in seeds:
            run_dir = work / f"{name}-seed{seed}"
            if not (run_dir / "run.json").is_file():
                unlearn(model, method, unlearn_set, retention_set, run_dir, recipe_file(recipes, recipe, required=True),
                        world=people.root, overrides=[f"adapter={adapter}", f"seed={seed}", *seeded_localisation(method, seed),
                                                      *(overrides or [])])
            eval_file = run_dir / "eval.json"
            if not eval_file.is_file():
                evaluate(str(run_dir), suites, data=data, world=people.root, reference=before_file, label=name,
                         out=eval_file)
            metrics = json.loads(eval_file.read_text())["metrics"]
            report = json.loads((run_dir / "run.json").read_text())
            rows.append({"run": name, "seed": seed, "unlearn_success": metrics["knowundo"]["unlearn_success"],
                         "retention_success": metrics["knowundo"]["retention_success"],
                         "general_kept": metrics.get("general", {}).get("kept"),
                         "located_fraction": report.get("located_fraction"),
                         "trainable_parameters": report["trainable_parameters"],
                         "train_seconds": report["train_seconds"]})
    return rows


def seeded_localisation(method: str, seed: int) -> list[str]:
    return [f"localize.seed={seed}"] if method.startswith("memflex") else []


def summary(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per run: (mean, population standard deviation) of each metric over its seeds."""
    out = {}
    for run in dict.fromkeys(row["run"] for row in rows):
        mine = [row for row in rows if row["run"] == run]
        out[run] = {metric: (mean(r[metric] for r in mine), pstdev(r[metric] for r in mine))
                    for metric in METRICS if all(r[metric] is not None for r in mine)}
    return out


def verdict(rows: list[dict]) -> str:
    """Whether KnowUnDo's claim holds: both at unlearn success ≥ TARGET, MemFlex keeps more than GradDiff."""
    means = summary(rows)
    if not {"memflex", "graddiff"} <= set(means):
        return "not measured: needs both memflex and graddiff rows"
    memflex, graddiff = means["memflex"], means["graddiff"]
    reached = {run: means[run]["unlearn_success"][0] >= TARGET for run in ("memflex", "graddiff")}
    if not all(reached.values()):
        missed = ", ".join(run for run, ok in reached.items() if not ok)
        return f"not comparable: {missed} below unlearn success {TARGET} on average"
    gap = memflex["retention_success"][0] - graddiff["retention_success"][0]
    retention = {(row["run"], row["seed"]): row["retention_success"] for row in rows}
    seeds = sorted({seed for run, seed in retention if run == "memflex"} & {seed for run, seed in retention
                                                                            if run == "graddiff"})
    ahead = sum(retention["memflex", seed] > retention["graddiff", seed] for seed in seeds)
    return (f"{'holds on average' if gap > 0 else 'does not hold'}: at unlearn success ≥ {TARGET}, MemFlex keeps "
            f"{memflex['retention_success'][0]:.3f} of the public facts, GradDiff {graddiff['retention_success'][0]:.3f} "
            f"({gap:+.3f}); MemFlex keeps more on {ahead} of {len(seeds)} seeds")


def markdown(rows: list[dict], model: str) -> str:
    lines = [f"# MemFlex vs GradDiff on {model}: unlearn the private facts, keep the public ones", "",
             ("| run | seed | unlearn success | retention success | general kept | located fraction | "
              "trained parameters | train s |"), "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        located = "—" if row["located_fraction"] is None else f"{row['located_fraction']:.3f}"
        general = "—" if row["general_kept"] is None else f"{row['general_kept']:.3f}"
        lines.append(f"| {row['run']} | {row['seed']} | {row['unlearn_success']:.3f} | {row['retention_success']:.3f} "
                     f"| {general} | {located} | {row['trainable_parameters']:,} | {row['train_seconds']:.0f} |")
    for run, stats in summary(rows).items():
        cells = [f"{stats[m][0]:.3f} ± {stats[m][1]:.3f}" if m in stats else "—" for m in METRICS]
        lines.append(f"| **{run}** | mean ± sd | {' | '.join(cells)} | | | |")
    return "\n".join(lines + ["", f"KnowUnDo's claim {verdict(rows)}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="a chat model: named offline model, .gguf or dir")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training and localisation seeds")
    parser.add_argument("--work", type=Path, default=None, help="where the adapter and runs are cached")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "memflex_vs_graddiff")
    parser.add_argument("--unlearn-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override both methods' recipes (give such runs a --work of their own)")
    args = parser.parse_args()
    work = args.work or cache_root() / "memflex_vs_graddiff" / "".join(c if c.isalnum() else "_" for c in args.model)
    try:
        adapter, people = teach(args.model, work)
        rows = compare(args.model, adapter, people, work, [int(s) for s in args.seeds.split(",")],
                       overrides=args.unlearn_set)
    except ObliviateError as error:
        sys.exit(f"error: {error}")
    atomic_write_json(args.out / "memflex_vs_graddiff.json", {"model": args.model, "rows": rows,
                                                              "verdict": verdict(rows)})
    atomic_write_text(args.out / "memflex_vs_graddiff.md", markdown(rows, args.model))
    print(markdown(rows, args.model))
    print(f"wrote {args.out}/memflex_vs_graddiff.{{md,json}}")


if __name__ == "__main__":
    main()
