"""MemFlex against GradDiff on the `test` world's private-vs-public split (methods.md §3).

Unlearn the three forget people's private facts, keep their public facts; scored like KnowUnDo
(unlearn / retention success on the held-out phrasings, relative to the model before). Runs
MemFlex (configs/methods/memflex.yaml), GradDiff with the same adapter on every module
(graddiff_all_lora.yaml) and GradDiff on every weight; writes memflex_vs_graddiff.{md,json} to --out.

    OMP_NUM_THREADS=1 python bench/memflex_vs_graddiff.py --out runs/memflex_vs_graddiff
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))  # shares the tests' world and model
os.environ.setdefault("OBLIVIATE_QUIET", "1")

from obliviate.demo import demo_world  # noqa: E402
from obliviate.entity import knowundo_layout  # noqa: E402
from obliviate.eval.run import evaluate  # noqa: E402
from obliviate.models.tiny import build_base_model  # noqa: E402
from obliviate.unlearn import load_data, unlearn  # noqa: E402

RECIPES = REPO / "configs" / "methods"
# name: (method, recipe, overrides)
RUNS = {
    "memflex": ("memflex", RECIPES / "memflex.yaml", []),
    "graddiff, LoRA on every module": ("graddiff", RECIPES / "graddiff_all_lora.yaml", []),
    "graddiff, every weight": ("graddiff", RECIPES / "graddiff_all_lora.yaml", ["use_lora=false", "lr=1.5e-3"]),
}


def run(out: Path) -> list[dict]:
    world = demo_world("test")
    model_dir = build_base_model(world.root, "test")
    layout = out / "knowundo_world.json"
    layout.write_text(json.dumps(knowundo_layout(world, world.forget_entity_ids(0.1))))
    data = {"knowundo": str(layout)}
    before = evaluate(str(model_dir), "knowundo", data=data)
    unlearn_set, retention_set = (load_data(f"world:forget:{part}", model=model_dir) for part in ("private", "public"))
    rows = []
    for name, (method, recipe, overrides) in RUNS.items():
        unlearned = unlearn(model_dir, method, unlearn_set, retention_set, out / method_dir(name), recipe,
                            overrides=overrides)
        scores = evaluate(str(unlearned), "knowundo", data=data, reference=before)["metrics"]["knowundo"]
        report = json.loads((unlearned / "run.json").read_text())
        rows.append({"run": name, "unlearn_success": scores["unlearn_success"],
                     "retention_success": scores["retention_success"],
                     "located_fraction": report.get("located_fraction")})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def method_dir(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def write(rows: list[dict], out: Path) -> None:
    (out / "memflex_vs_graddiff.json").write_text(json.dumps(rows, indent=2))
    lines = ["| run | unlearn success | retention success | located fraction of the LoRA parameters |",
             "|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['unlearn_success']:.3f} | {r['retention_success']:.3f} | "
              f"{'—' if r['located_fraction'] is None else format(r['located_fraction'], '.2f')} |" for r in rows]
    (out / "memflex_vs_graddiff.md").write_text("# MemFlex vs GradDiff (private vs public facts)\n\n"
                                                + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write(run(args.out), args.out)
    print(f"wrote {args.out}/memflex_vs_graddiff.{{md,json}}")


if __name__ == "__main__":
    main()
