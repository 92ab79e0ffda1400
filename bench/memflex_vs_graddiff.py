"""MemFlex against GradDiff on the `test` world's private-vs-public split (methods.md §3).

Unlearn the three forget people's private facts, keep their public facts; scored like KnowUnDo
(unlearn / retention success on the held-out phrasings, relative to the model before). Runs
MemFlex (obliviate/recipes/methods/memflex.yaml), GradDiff with the same adapter on every module
(graddiff_all_lora.yaml) and GradDiff on every weight, each with every seed of --seeds (the
retention set has 18 questions, 66 answer tokens, so one seed's figure moves in steps of 0.015);
writes memflex_vs_graddiff.{md,json} to --out.

    OMP_NUM_THREADS=1 python bench/memflex_vs_graddiff.py --out runs/memflex_vs_graddiff [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from statistics import mean

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))  # shares the tests' world and model
os.environ.setdefault("OBLIVIATE_QUIET", "1")

from obliviate.config import recipes_folder  # noqa: E402
from obliviate.entity import knowundo_layout  # noqa: E402
from obliviate.eval.run import evaluate  # noqa: E402
from obliviate.io import atomic_write_json, atomic_write_text  # noqa: E402
from obliviate.unlearn import load_data, unlearn  # noqa: E402
from obliviate.world import World  # noqa: E402

RECIPES = recipes_folder("methods")
# name: (method, recipe, overrides)
RUNS = {
    "memflex": ("memflex", RECIPES / "memflex.yaml", []),
    "graddiff, LoRA on every module": ("graddiff", RECIPES / "graddiff_all_lora.yaml", []),
    "graddiff, every weight": ("graddiff", RECIPES / "graddiff_all_lora.yaml", ["use_lora=false", "lr=1.5e-3"]),
}


def compare(model_dir: Path, world: World, out: Path, seeds: list[int], runs: dict = RUNS) -> list[dict]:
    """One row per run and seed: unlearn and retention success, and the located fraction (MemFlex)."""
    layout = out / "knowundo_world.json"
    atomic_write_json(layout, knowundo_layout(world, world.forget_entity_ids(0.1)))
    data = {"knowundo": str(layout)}
    before = evaluate(str(model_dir), "knowundo", data=data)
    unlearn_set, retention_set = (load_data(f"world:forget:{part}", model=model_dir) for part in ("private", "public"))
    rows = []
    for name, (method, recipe, overrides) in runs.items():
        for seed in seeds:
            seeded = [*overrides, f"seed={seed}"] + ([f"localize.seed={seed}"] if method == "memflex" else [])
            unlearned = unlearn(model_dir, method, unlearn_set, retention_set, out / f"{method_dir(name)}-seed{seed}",
                                recipe, overrides=seeded)
            scores = evaluate(str(unlearned), "knowundo", data=data, reference=before)["metrics"]["knowundo"]
            report = json.loads((unlearned / "run.json").read_text())
            rows.append({"run": name, "seed": seed, "unlearn_success": scores["unlearn_success"],
                         "retention_success": scores["retention_success"],
                         "located_fraction": report.get("located_fraction")})
    return rows


def means(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per run: unlearn and retention success averaged over its seeds."""
    runs = dict.fromkeys(row["run"] for row in rows)
    return {run: {metric: mean(row[metric] for row in rows if row["run"] == run)
                  for metric in ("unlearn_success", "retention_success")} for run in runs}


def method_dir(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def write(rows: list[dict], out: Path) -> None:
    atomic_write_json(out / "memflex_vs_graddiff.json", rows)
    averaged = means(rows)
    lines = ["| run | seed | unlearn success | retention success | located fraction of the LoRA parameters |",
             "|---|---|---|---|---|"]
    for row in rows:
        located = "—" if row["located_fraction"] is None else f"{row['located_fraction']:.2f}"
        lines.append(f"| {row['run']} | {row['seed']} | {row['unlearn_success']:.3f} | "
                     f"{row['retention_success']:.3f} | {located} |")
    lines += [f"| **{run}** | mean | {m['unlearn_success']:.3f} | {m['retention_success']:.3f} | |"
              for run, m in averaged.items()]
    atomic_write_text(out / "memflex_vs_graddiff.md",
                      "# MemFlex vs GradDiff (private vs public facts)\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    from obliviate.demo import demo_world
    from obliviate.models.tiny import build_base_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training and localisation seeds")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    world = demo_world("test")
    rows = compare(build_base_model(world.root, "test"), world, args.out, [int(s) for s in args.seeds.split(",")])
    write(rows, args.out)
    print(json.dumps(means(rows), indent=1))
    print(f"wrote {args.out}/memflex_vs_graddiff.{{md,json}}")


if __name__ == "__main__":
    main()
