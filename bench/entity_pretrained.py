"""Entity-level unlearning on SmolLM2-135M-Instruct: entities it learned in pre-training against injected ones.

    OBLIVIATE_TOFU_DIR=../shared/data/tofu PYTHONPATH=src python bench/entity_pretrained.py --out runs/entity_pretrained

Two kinds of entity, the same model, the same question kinds:
- pretrained: obliviate/entity/famous_people.jsonl (25 real people and fictional characters in five groups,
  8 facts each with a held-out phrasing), filtered by the model's own answers (`keep_known`: a phrasing
  stays when the greedy answer contains the reference; that answer is what unlearning trains on, for the
  forget set and the neighbours' retain set alike, as RWKU's forget corpus is the model's own text);
- injected: `INJECTED` fictitious people taught to the same model with `obliviate inject`
  (recipes/pretrained/finetune.yaml; the 6 public attributes, 3 trained phrasings and 1 held-out phrasing
  each), filtered the same way by the taught model;
- injected_text (optional, `--kinds injected_text`): the same people taught as QA and as running text (`inject
  --texts`: each person's biography in two sentence orders), an injection closer to pre-training.
Of each kind, `FORGET` entities are forgotten: those with the most known facts, none a neighbour of another.
Their neighbours (the rest of their group; for injected people co-authors, same city, same profession)
are the retain set. For each method × coverage: unlearn the covered facts (recipes/pretrained/<method>.yaml,
its 4 epochs at batch 8, or --steps optimiser steps), then measure the share answered right on the forget set,
the uncovered facts, the held-out phrasings and the neighbours (the answer contains the reference), and the `general` suite
(TOFU's real-author and world-fact questions: accuracy, and kept of what the model answered right before).
Writes entities_{pretrained,injected}.jsonl (the filtered sets), entity_pretrained.{json,md,png} and, per
run, runs/<kind>-<method>-<coverage>.json (a second invocation measures only what is missing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")

from obliviate.config import recipe_file  # noqa: E402
from obliviate.data.tofu import local_tofu_dir  # noqa: E402
from obliviate.demo import demo_world  # noqa: E402
from obliviate.entity import build_entity_forget_set, inject, probe_entity  # noqa: E402
from obliviate.entity.entity_file import (  # noqa: E402
    Entity,
    entity_world,
    famous_people_file,
    keep_known,
    load_entities,
    stated_records,
    world_entities,
    write_entity_file,
)
from obliviate.errors import ObliviateError  # noqa: E402
from obliviate.eval.answer_match import answer_contained  # noqa: E402
from obliviate.eval.generation import generate_answers  # noqa: E402
from obliviate.eval.run import evaluate  # noqa: E402
from obliviate.io import atomic_write_json, atomic_write_text  # noqa: E402
from obliviate.models import load_model, load_tokenizer  # noqa: E402
from obliviate.unlearn import get_method, unlearn  # noqa: E402
from obliviate.unlearn.run import resolve_config  # noqa: E402
from obliviate.world import World  # noqa: E402

MODEL = "smollm2-135m"
METHODS = ("graddiff", "npo_gd", "npo_kl")
SWEEP_METHOD, SWEEP_LRS = "npo_gd", (3e-4, 1e-3)  # efficacy against neighbour retention at several strengths
MARKERS = {"pretrained": "o", "injected": "s"}  # injected with text: "^"
LINES = {"pretrained": "-", "injected": "--"}  # injected with text dotted
COLOURS = dict(zip(METHODS, ("tab:blue", "tab:orange", "tab:green")))
COVERAGES = (0.25, 0.5, 1.0)
KINDS = ("pretrained", "injected")  # and "injected_text": the same people taught as QA and running text
FORGET = 4
INJECTED = 8
INJECTED_ATTRIBUTES = ("profession", "birthplace", "birth_year", "notable_work", "award", "coauthor")
PARTS = ("forget", "uncovered", "heldout_phrasings", "probes", "neighbours")


def known_entities(model, entities: list[Entity]) -> list[Entity]:
    """`entities` with only the phrasings `model` (a path) answers right, each with the model's answer."""
    loaded, tokenizer = load_model(model), load_tokenizer(model)
    return keep_known(entities, lambda questions: generate_answers(loaded, tokenizer, questions))


def forget_names(entities: list[Entity], count: int = FORGET) -> list[str]:
    """The `count` entities with the most known facts (file order breaks ties), none a neighbour of another."""
    chosen: list[Entity] = []
    for entity in sorted(entities, key=lambda e: -len(e.facts)):
        related = {n for c in chosen for n in c.neighbours} | {c.name for c in chosen}
        if entity.name not in related and not set(entity.neighbours) & {c.name for c in chosen}:
            chosen.append(entity)
        if len(chosen) == count:
            break
    return [e.name for e in chosen]


def prepare(kind: str, out: Path, seed: int) -> tuple[str | Path, World, list[str]]:
    """(the model to unlearn from, the world of the kind's known entities, the names to forget)."""
    if kind == "pretrained":
        model, entities = MODEL, load_entities(famous_people_file())
    else:
        model = out / f"{kind}-model"
        if not (model / "entities" / "world.json").is_file():
            inject(MODEL, INJECTED, model, seed, world=demo_world("test").root,
                   config=recipe_file("pretrained", "finetune", required=True), attributes=list(INJECTED_ATTRIBUTES),
                   texts=kind == "injected_text")
        entities = world_entities(World(model / "entities"))
    known_file = out / f"entities_{kind}.jsonl"
    if not known_file.is_file():
        write_entity_file(known_file, known_entities(model, entities))
    known = load_entities(known_file)
    return model, entity_world(known, out / f"world_{kind}"), forget_names(known)


def general(model, out: Path, reference: Path | None = None) -> dict:
    tofu = local_tofu_dir()
    if tofu is None:
        raise ObliviateError("TOFU's questions are not in ../shared/data/tofu: set OBLIVIATE_TOFU_DIR")
    doc = evaluate(model, "general", data={"tofu": str(tofu)}, reference=reference, out=out)
    return doc["metrics"]["general"]


def recipe_lr(method: str) -> float:
    return resolve_config(get_method(method), recipe_file("pretrained", method, required=True)).lr


def run_one(kind: str, method: str, coverage: float, lr: float, model, world: World, names: list[str], out: Path,
            steps: int, seed: int) -> dict:
    name = f"{kind}-{method}-{coverage:g}" + ("" if lr == recipe_lr(method) else f"-lr{lr:g}")
    result_file = out / "runs" / f"{name}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text()) | {"lr": lr}
    split = build_entity_forget_set(world, names, coverage, seed)
    run_dir = out / "runs" / name
    started = time.perf_counter()
    unlearn(model, method, stated_records(split.forget), stated_records(split.retain), run_dir,
            recipe_file("pretrained", method, required=True),
            overrides=([f"max_steps={steps}"] if steps else []) + [f"seed={seed}", f"lr={lr}"], world=world.root)
    seconds = time.perf_counter() - started
    after = probe_entity(load_model(run_dir), load_tokenizer(run_dir), split, answer_contained)
    kept = general(run_dir, out / "runs" / f"{name}.general.json", out / f"general_{kind}.json")
    shutil.rmtree(run_dir)
    row = {"kind": kind, "method": method, "coverage": coverage, "lr": lr, "forget_n": len(split.forget),
           "probes_n": len(split.probes), "neighbours_n": len(split.neighbours), "unlearn_seconds": round(seconds, 1),
           **{f"after/{part}": after[part] for part in PARTS},
           "general/accuracy": kept["accuracy"], "general/kept": kept["kept"]}
    atomic_write_json(result_file, row)
    return row


def probe_before(kind: str, coverage: float, model, world: World, names: list[str], out: Path, seed: int) -> dict:
    """The share answered right per part before unlearning, on the split of `coverage` (cached)."""
    cached = out / "runs" / f"{kind}-before-{coverage:g}.json"
    if not cached.is_file():
        split = build_entity_forget_set(world, names, coverage, seed)
        atomic_write_json(cached, probe_entity(load_model(model), load_tokenizer(model), split, answer_contained))
    return json.loads(cached.read_text())


def run(out: Path, kinds, methods, coverages, sweep_lrs, steps: int, seed: int) -> tuple[list[dict], dict]:
    """The coverage grid at each method's recipe lr, then SWEEP_METHOD at coverage 1.0 and each of `sweep_lrs`."""
    settings = [(coverage, method, recipe_lr(method)) for coverage in coverages for method in methods]
    settings += [(1.0, SWEEP_METHOD, lr) for lr in sweep_lrs]
    rows, before = [], {}
    for kind in kinds:
        model, world, names = prepare(kind, out, seed)
        split = build_entity_forget_set(world, names, 1.0, seed)
        base_file = out / f"general_{kind}.json"  # the reference of every run's general/kept
        base = (json.loads(base_file.read_text())["metrics"]["general"] if base_file.is_file()
                else general(model, base_file))
        before[kind] = {"entities": names, "known_entities": len(world.people), "known_facts": len(world.qa()),
                        "heldout_facts": len(world.qa(probes=True)), "forget_facts": len(split.forget),
                        "neighbours_facts": len(split.neighbours), "general/accuracy": base["accuracy"]}
        print(json.dumps({"kind": kind, **before[kind]}), flush=True)
        for coverage, method, lr in settings:
            probed = probe_before(kind, coverage, model, world, names, out, seed)
            row = run_one(kind, method, coverage, lr, model, world, names, out, steps, seed)
            row |= {f"before/{part}": probed[part] for part in PARTS}
            row["probe_efficacy"] = 1 - row["after/probes"] / probed["probes"]
            row["neighbour_retention"] = row["after/neighbours"] / probed["neighbours"]
            rows.append(row)
            print(json.dumps({k: v if k == "lr" or not isinstance(v, float) else round(v, 3) for k, v in row.items()}),
                  flush=True)
    return rows, before


def write(rows: list[dict], before: dict, out: Path, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write_json(out / "entity_pretrained.json", {"model": MODEL, "steps": steps, "before": before,
                                                       "rows": [{k: None if _is_nan(v) else v for k, v in r.items()}
                                                                for r in rows]})
    schedule = f"{steps} steps a run" if steps else "each method's recipe: 4 epochs of the forget set at batch 8"
    lines = [f"# Entity unlearning on {MODEL}: pre-trained vs injected entities ({schedule})", "",
             "The sets hold only what the model answered right when they were filtered.", "",
             ("| kind | forget entities | known entities | known facts | their held-out phrasings | forget entities' "
              "facts | neighbours' facts | general accuracy |"), "|---|---|---|---|---|---|---|---|"]
    for kind, b in before.items():
        lines.append(f"| {kind} | {', '.join(b['entities'])} | {b['known_entities']} | {b['known_facts']} | "
                     f"{b['heldout_facts']} | {b['forget_facts']} | {b['neighbours_facts']} | "
                     f"{b['general/accuracy']:.3f} |")
    grid = [r for r in rows if r["lr"] == recipe_lr(r["method"])]
    sweep = sorted((r for r in rows if r["method"] == SWEEP_METHOD and r["coverage"] == 1.0),
                   key=lambda r: (list(before).index(r["kind"]), r["lr"]))
    columns = ("kind", "method", "coverage", "forget_n", "before/probes", "after/forget", "after/uncovered",
               "after/heldout_phrasings", "after/probes", "after/neighbours", "probe_efficacy", "neighbour_retention",
               "general/kept", "unlearn_seconds")
    lines += ["", ("Share answered right (the reference contained in the greedy answer); probe efficacy = 1 − "
                   "probes after / before; neighbour retention = neighbours after / before; general/kept: of the "
                   "general questions right before:"), "", *_table(grid, columns),
              "", f"{SWEEP_METHOD} at coverage 1.0 and several learning rates:", "",
              *_table(sweep, ("kind", "lr", *columns[3:]))]
    atomic_write_text(out / "entity_pretrained.md", "\n".join(lines) + "\n")

    figure, (by_coverage, by_lr) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for axes, shown, label, title in ((by_coverage, grid, "coverage", "each method's recipe; coverage at each point"),
                                      (by_lr, sweep, "lr", f"{SWEEP_METHOD}, coverage 1.0; lr at each point")):
        for kind in before:
            for method in dict.fromkeys(r["method"] for r in shown if r["kind"] == kind):
                mine = [r for r in shown if r["kind"] == kind and r["method"] == method]
                x, y = [r["neighbour_retention"] for r in mine], [r["probe_efficacy"] for r in mine]
                axes.plot(x, y, marker=MARKERS.get(kind, "^"), color=COLOURS.get(method),
                          linestyle=LINES.get(kind, ":"), label=f"{method}, {kind}")
                for xi, yi, r in zip(x, y, mine):
                    axes.annotate(f"{r[label]:g}", (xi, yi), fontsize=7)
        axes.set(xlabel="neighbour retention (answered right after / before)")
        axes.set_title(f"{MODEL}: {title}", fontsize=9)
        axes.legend(fontsize=7)
    by_coverage.set(ylabel="held-out probe efficacy (1 − after / before)")
    figure.tight_layout()
    figure.savefig(out / "entity_pretrained.png", dpi=120)


def _table(rows: list[dict], columns) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(_cell(row[c], c) for c in columns) + " |" for row in rows)]


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _cell(value, column: str) -> str:
    if not isinstance(value, float):
        return str(value)
    if _is_nan(value):
        return "–"
    return {"lr": f"{value:g}", "unlearn_seconds": f"{value:.0f}"}.get(column, f"{value:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per unlearning run (default: the recipe's 4 epochs over the forget set, "
                             "so a larger forget set gets more steps)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--coverages", default=",".join(map(str, COVERAGES)))
    parser.add_argument("--sweep-lrs", default=",".join(map(str, SWEEP_LRS)),
                        help=f"learning rates of the {SWEEP_METHOD} runs at coverage 1.0 besides its recipe's ('' for "
                             "none): the same method at several strengths, to compare kinds at equal neighbour "
                             "retention")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, before = run(args.out, args.kinds.split(","), args.methods.split(","),
                       [float(c) for c in args.coverages.split(",")],
                       [float(lr) for lr in args.sweep_lrs.split(",") if lr], args.steps, args.seed)
    write(rows, before, args.out, args.steps)
    print(f"wrote {args.out}/entity_pretrained.{{md,json,png}}")


if __name__ == "__main__":
    main()
