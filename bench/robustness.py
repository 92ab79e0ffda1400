"""Robustness of unlearning methods on the test world: every attack against each method's run.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/robustness.py [--methods ga,graddiff,npo,rmu,elm,unierase,idk]
                                                                [--out DIR]

Each method unlearns the world's forget split (its three people) with its recipe into <out>/<method>
(kept when already there): a loss-based method on their QA (obliviate/recipes/methods/<name>.yaml); ELM, which
erases a concept from texts, on their biographies with their names as the concept; UniErase on their
QA (obliviate/recipes/methods/unierase.yaml). Then `run_attacks` writes <out>/<method>/attacks.json,
so `obliviate report <out>/<method>` shows the attacks section. The floor is a retain model that
never saw the forget people; the upper bound is the original. Writes robustness.json and
robustness.md (first column: forget exact match with no attack; then per attack the recovered
fraction, with the share of the floor→upper gap that came back).
OBLIVIATE_CACHE=.cache/tests reuses the test fixtures' world, base and retain models.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from obliviate.attacks import run_attacks
from obliviate.attacks.context import Subject
from obliviate.attacks.extraction import extracted, fraction, qa_prompt
from obliviate.config import recipe_file
from obliviate.demo import demo_world
from obliviate.io import atomic_write_json, atomic_write_text
from obliviate.models.tiny import build_base_model
from obliviate.unlearn import load_data, unlearn
from obliviate.world import World


def cell(row: dict) -> str:
    recovered, floor, upper = row["recovered"], row["floor"], row["upper"]
    if None in (recovered, floor, upper):
        return "–"
    gap = f" ({100 * (recovered - floor) / (upper - floor):.0f}%)" if upper != floor else ""
    return f"{recovered:.2f}{gap}"


def markdown(results: dict[str, dict], unattacked: dict[str, float], title: str = "Robustness on the test world",
             controls: str = "floor (retain model) and upper (original)") -> str:
    attacks = list(next(iter(results.values()))["attacks"])
    lines = [f"# {title}", "",
             ("no attack: forget exact match of the plain questions; then what each attack recovered on the "
              f"unlearned model (share of the floor→upper gap that came back); last rows: {controls}."), "",
             "| method | no attack | " + " | ".join(attacks) + " |", "|---" * (len(attacks) + 2) + "|"]
    for method, document in results.items():
        lines.append(f"| {method} | {unattacked[method]:.2f} | "
                     + " | ".join(cell(document["attacks"][a]) for a in attacks) + " |")
    first = next(iter(results.values()))["attacks"]
    for control in ("floor", "upper"):
        lines.append(f"| *{control}* | {unattacked[control]:.2f} | "
                     + " | ".join(f"{first[a][control]:.2f}" for a in attacks) + " |")
    return "\n".join(lines) + "\n"


def plain_extraction(model_dir: Path, forget: list) -> float:
    """The share of forget answers the model gives to the plain questions."""
    subject = Subject.load("attacked", model_dir)
    prompts = [qa_prompt(subject.tokenizer, r.question) for r in forget]
    return fraction(extracted(subject.model, subject.tokenizer, prompts, [r.answer for r in forget]))


def unlearned(method: str, base: Path, world: World, run_dir: Path) -> Path:
    """`base` with the world's forget people unlearned by `method` into `run_dir` (kept when already there)."""
    if (run_dir / "run.json").is_file():
        return run_dir
    recipe = recipe_file("methods", method, required=True)
    if method == "elm":
        forget_ids = world.forget_entity_ids(0.1)
        names = ", ".join(person["name"] for person in world.people if person["id"] in forget_ids)
        return unlearn(base, "elm", world.bios(forget_ids), "world:retain", run_dir, recipe,
                       overrides=[f"concept={names}"])
    # UniErase's token learns the world's own refusal phrasings (its recipe says so); "world:retain" is what its
    # edit preserves, as its recipe's `preserved` also says.
    refusals = [f"token.refusals={world.path('refusal_phrasings')}"] if method == "unierase" else []
    return unlearn(base, method, "world:forget", "world:retain", run_dir, recipe, overrides=refusals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="ga,graddiff,npo,rmu,elm,unierase,idk")
    parser.add_argument("--attacks", default="all")
    parser.add_argument("--out", type=Path, default=Path("runs/robustness"))
    args = parser.parse_args()
    world = demo_world("test")
    base = build_base_model(world.root, "test")
    retain_model = build_base_model(world.root, "test", exclude_entities=world.forget_entity_ids(0.1))
    forget = load_data("world:forget", model=base)
    results = {}
    unattacked = {"floor": plain_extraction(retain_model, forget), "upper": plain_extraction(base, forget)}
    for method in args.methods.split(","):
        run_dir = unlearned(method, base, world, args.out / method)
        unattacked[method] = plain_extraction(run_dir, forget)
        results[method] = run_attacks(run_dir, base, retain_model, forget, args.attacks, world=world,
                                      out=run_dir / "attacks.json")
        print(method, {name: row["recovered"] for name, row in results[method]["attacks"].items()}, flush=True)
    atomic_write_json(args.out / "robustness.json",
                      {"no_attack": unattacked, **{method: d["attacks"] for method, d in results.items()}})
    atomic_write_text(args.out / "robustness.md", markdown(results, unattacked))
    print(markdown(results, unattacked))


if __name__ == "__main__":
    main()
