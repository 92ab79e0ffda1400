"""ELM against RMU on the synthetic world: erase one craft, keep the other crafts and the world facts.

    OMP_NUM_THREADS=1 PYTHONPATH=src python bench/elm_vs_rmu.py [--craft glimmerwork] [--out runs/elm_vs_rmu]

Writes one eval JSON per model (base, elm, rmu) and report.md with their comparison, and prints each
model's MCQ per craft, world facts, reverse perplexity against the base's, and how often the true choice
still makes the likeliest expository statement of the erased craft.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from obliviate.config import recipe_file
from obliviate.data import QARecord, TextRecord
from obliviate.eval.run import evaluate
from obliviate.eval.scoring import score_texts
from obliviate.io import atomic_write_jsonl
from obliviate.models import load_model, load_tokenizer
from obliviate.report import write_report
from obliviate.unlearn import unlearn
from obliviate.unlearn.methods.elm import ELMConfig
from obliviate.unlearn.registry import get_method
from obliviate.unlearn.run import resolve_config
from obliviate.world import World
from obliviate.world.domains import choice_value, expository_text

REPO = Path(__file__).resolve().parents[1]
FACT_SAMPLE = 32


def as_text(records: list[QARecord]) -> list[TextRecord]:
    """Question-answer records written as text: "{question} {answer}"."""
    return [TextRecord(f"{r.question} {r.answer}") for r in records]


def craft_task(world: World, craft: str, seed: int = 0) -> tuple[list[TextRecord], list[TextRecord]]:
    """Forget: the craft's expository and expert texts. Retain: the other crafts' texts and drill
    questions, and a sample of world facts and people QA, the questions written as text."""
    forget = world.domain_texts(craft, ("expository", "expert"))
    others = [other for other in world.domain_names if other != craft]
    retain = [r for other in others for r in world.domain_texts(other)]
    rng = random.Random(seed)
    qa = world.world_facts() + rng.sample(world.qa(), FACT_SAMPLE)
    qa = rng.sample(qa, 2 * FACT_SAMPLE) + [r for other in others for r in world.drill_qa(other)]
    retain += as_text(qa)
    return forget, retain


def elm_config(world: World, craft: str, overrides: list[str] = ()) -> ELMConfig:
    return resolve_config(get_method("elm"), recipe_file("methods", "elm", required=True),
                          [f"concept={world.domain_concept(craft)}", *overrides])


def run_elm(model_dir, world: World, craft: str, out: Path, overrides: list[str] = ()) -> Path:
    forget, retain = craft_task(world, craft)
    return unlearn(model_dir, "elm", forget, retain, out, elm_config(world, craft, overrides))


def run_rmu(model_dir, world: World, craft: str, out: Path, overrides: list[str] = ()) -> Path:
    forget, retain = craft_task(world, craft)
    return unlearn(model_dir, "rmu", forget, retain, out, recipe_file("methods", "rmu", required=True),
                   overrides=list(overrides))


def craft_prompts(world: World, craft: str, path: Path) -> Path:
    """The erased craft's questions, as prompts for the fluency suite."""
    return atomic_write_jsonl(path, [{"question": r.question} for r in world.mcq(craft)])


def evaluate_craft_erasure(model_dir, base_dir, world: World, prompts: Path, out: Path | None = None,
                           craft: str | None = None) -> dict:
    """MCQ of every craft, world-fact exact match, and fluency of answers to the erased craft's questions; with
    `craft`, the eval declares that craft's MCQ (the mcq suite's subject, the world suite's mcq_<craft>) a set to
    be forgotten, so the report charts it as efficacy, lower is better."""
    data = {"prompts": str(prompts)} | ({"forget_sets": f"{craft},mcq_{craft}"} if craft else {})
    return evaluate(model_dir, "mcq,fluency,world", world=world, original=base_dir, data=data, out=out)


def statement_ranking(model_dir, world: World, craft: str) -> float:
    """The share of the craft's four-choice questions whose true choice, written into the craft's expository
    passage, makes the likeliest of the four passages: how the MCQ's likelihood ranking sees the texts ELM
    trains on."""
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    records = world.mcq(craft)
    texts = [expository_text({"domain": craft, **r.meta}, choice_value(r.meta["kind"], choice))
             for r in records for choice in r.choices]
    scores = iter(score_texts(model, tokenizer, texts, description="scoring statements"))
    firsts = 0
    for r in records:
        nll = [next(scores).nll for _ in r.choices]
        firsts += min(range(len(nll)), key=nll.__getitem__) == r.answer
    return firsts / len(records)


def summary(result: dict, base: dict, world: World) -> dict:
    """The acceptance numbers: MCQ accuracy per craft, world-fact exact match, reverse perplexity / the base's."""
    mcq, world_suite = result["metrics"]["mcq"], result["metrics"]["world"]
    perplexity = result["metrics"]["fluency"]["reverse_perplexity"]
    return {**{name: mcq[f"{name}/accuracy"] for name in world.domain_names},
            "world_facts": world_suite["world_facts/exact_match"],
            "reverse_perplexity_ratio": perplexity / base["metrics"]["fluency"]["reverse_perplexity"]}


def main() -> None:
    from obliviate.demo import demo_world
    from obliviate.models.tiny import build_base_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--craft", default="glimmerwork")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "elm_vs_rmu")
    args = parser.parse_args()
    world = demo_world("test")
    base_dir = build_base_model(world.root, "test")
    args.out.mkdir(parents=True, exist_ok=True)
    models = {"base": base_dir, "elm": run_elm(base_dir, world, args.craft, args.out / "elm"),
              "rmu": run_rmu(base_dir, world, args.craft, args.out / "rmu")}
    prompts = craft_prompts(world, args.craft, args.out / "prompts.jsonl")
    results = {name: evaluate_craft_erasure(path, base_dir, world, prompts, args.out / f"{name}.eval.json",
                                            craft=args.craft)
               for name, path in models.items()}
    table = {name: {**summary(result, results["base"], world),
                    "true_statement_first": statement_ranking(models[name], world, args.craft)}
             for name, result in results.items()}
    print(json.dumps(table, indent=1))
    write_report([args.out / f"{name}.eval.json" for name in models], args.out / "report.md",
                 title=f"ELM vs RMU: erasing {args.craft}")


if __name__ == "__main__":
    main()
