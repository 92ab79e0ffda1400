"""Entity-level unlearning vs forget-set coverage on the `test` world (methods.md §4).

For 3 methods × coverages 0.25 / 0.5 / 1.0: unlearn the covered attributes of the world's three
forget people (neighbours as retain set), then measure exact match on the forget set, on the
held-out probes (uncovered attributes + held-out phrasings) and on the neighbours.
Writes entity_coverage.md, entity_coverage.json and entity_coverage.png to --out.

    python bench/entity_coverage.py --out runs/entity_coverage [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))  # shares the tests' world and model
os.environ.setdefault("OBLIVIATE_QUIET", "1")

from obliviate.config import recipes_folder  # noqa: E402
from obliviate.demo import demo_world  # noqa: E402
from obliviate.entity import build_entity_forget_set, probe_entity  # noqa: E402
from obliviate.io import atomic_write_json, atomic_write_text  # noqa: E402
from obliviate.models import load_model, load_tokenizer  # noqa: E402
from obliviate.models.tiny import build_base_model  # noqa: E402
from obliviate.unlearn import unlearn  # noqa: E402

METHODS = ("graddiff", "npo_gd", "simnpo")
COVERAGES = (0.25, 0.5, 1.0)
RECIPES = recipes_folder("methods")


def relative(after: float, before: float) -> float:
    return after / before if before > 0 else 1.0


def run(steps: int, seed: int) -> list[dict]:
    world = demo_world("test")
    model_dir = build_base_model(world.root, "test")
    names = [world.people[i]["name"] for i in world.forget_entity_ids(0.1)]
    base = load_model(model_dir), load_tokenizer(model_dir)
    rows = []
    for coverage in COVERAGES:
        forget_set = build_entity_forget_set(world, names, coverage, seed)
        before = probe_entity(*base, forget_set)
        for method in METHODS:
            with tempfile.TemporaryDirectory() as tmp:
                unlearned = unlearn(model_dir, method, forget_set.forget, forget_set.retain, Path(tmp) / method,
                                    RECIPES / f"{method}.yaml", overrides=[f"max_steps={steps}", f"seed={seed}"])
                after = probe_entity(load_model(unlearned), load_tokenizer(unlearned), forget_set)
            rows.append({"method": method, "coverage": coverage, "forget_n": len(forget_set.forget),
                         **{f"before/{k}": v for k, v in before.items()}, **{f"after/{k}": v for k, v in after.items()},
                         "forget_efficacy": 1 - relative(after["forget"], before["forget"]),
                         "probe_efficacy": 1 - relative(after["probes"], before["probes"]),
                         "neighbour_retention": relative(after["neighbours"], before["neighbours"])})
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    return rows


def write(rows: list[dict], out: Path, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    strict = [{k: None if v != v else v for k, v in row.items()} for row in rows]  # NaN (an empty part) → null
    atomic_write_json(out / "entity_coverage.json", {"steps": steps, "rows": strict})
    columns = ("method", "coverage", "forget_n", "after/forget", "after/uncovered", "after/heldout_phrasings",
               "after/neighbours", "forget_efficacy", "probe_efficacy", "neighbour_retention")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |"
              for row in rows]
    title = f"# Entity unlearning vs coverage ({steps} steps)\n\n"
    atomic_write_text(out / "entity_coverage.md", title + "\n".join(lines) + "\n")

    figure, axes = plt.subplots(figsize=(6, 4.5))
    for method in METHODS:
        mine = [row for row in rows if row["method"] == method]
        axes.plot([r["neighbour_retention"] for r in mine], [r["probe_efficacy"] for r in mine], "o-", label=method)
        for r in mine:
            axes.annotate(f"{r['coverage']:g}", (r["neighbour_retention"], r["probe_efficacy"]), fontsize=8)
    axes.set(xlabel="neighbour retention (EM / EM before)", ylabel="held-out probe efficacy (1 − EM / EM before)",
             title="entity unlearning: coverage labelled at each point")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "entity_coverage.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (small: the model is tiny)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = run(args.steps, args.seed)
    write(rows, args.out, args.steps)
    print(f"wrote {args.out}/entity_coverage.{{md,json,png}}")


if __name__ == "__main__":
    main()
