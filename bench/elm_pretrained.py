"""ELM's claims on SmolLM2-135M-Instruct: erase a craft the model was taught by continued pre-training.

    OBLIVIATE_TOFU_DIR=../shared/data/tofu PYTHONPATH=src python bench/elm_pretrained.py --out runs/elm_pretrained

SmolLM2 knows nothing of the synthetic world's four crafts: its scores on them before teaching are the level of
"a model that never learned it". It is taught all four by continued pre-training (recipes/pretrained/finetune.yaml:
each craft's expository, expert and novice passages and its drill questions in the chat format, with KL to
the model's own answers to the world's people questions), then one craft is erased from the taught model:
- elm (recipes/pretrained/elm.yaml: the reference code's settings on a shorter schedule) and its three
  ablations, without the erase term (gamma=0), the retain term (alpha=0) or the consistency term
  (consistency_weight=0);
- rmu (recipes/pretrained/rmu.yaml) and graddiff (recipes/pretrained/graddiff.yaml), for comparison.
Forget: the erased craft's expository and expert passages. Retain: the other crafts' passages and drill
questions, and general text (passages of Python's documentation, `obliviate.editing.general_text`'s offline
stand-in for the reference's WikiText).
Each model is measured on: four-choice MCQ per craft by answer likelihood, drill questions answered per craft
(the greedy answer contains the reference), the `general` suite (TOFU's real-author and world-fact questions:
accuracy and kept of what the taught model answered), and the reverse perplexity of its answers to the erased
craft's questions under the taught model, as a ratio to the taught model's own. Writes per model
<name>.json, and elm_pretrained.{json,md}; a second invocation measures only what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")

from elm_vs_rmu import as_text, craft_prompts  # noqa: E402

from obliviate.config import recipe_file  # noqa: E402
from obliviate.data import TextRecord  # noqa: E402
from obliviate.data.tofu import local_tofu_dir  # noqa: E402
from obliviate.demo import demo_world  # noqa: E402
from obliviate.errors import ObliviateError  # noqa: E402
from obliviate.eval.answer_match import answer_contained  # noqa: E402
from obliviate.eval.generation import generate_answers  # noqa: E402
from obliviate.eval.run import evaluate  # noqa: E402
from obliviate.io import atomic_write_json, atomic_write_text  # noqa: E402
from obliviate.models import load_model, load_tokenizer  # noqa: E402
from obliviate.unlearn import unlearn  # noqa: E402
from obliviate.world import World  # noqa: E402

MODEL = "smollm2-135m"
CRAFT = "glimmerwork"
GENERAL_PASSAGES = 120  # of general text in the retain set, each cut to 700 characters
# Teaching keeps the model's own answers to questions (KL on the world's people QA in the chat format, as
# `obliviate inject` does): with KL on general text instead, it answered every question in the crafts' style
# (general accuracy 0.39 -> 0.01) and its craft MCQ rose only to 0.28-0.35.
TEACH_SETTINGS = ["epochs=5", "alpha=1.0"]
# name: (method, overrides on its recipes/pretrained/<method>.yaml)
RUNS = {
    "elm": ("elm", []),
    "elm_no_erase": ("elm", ["gamma=0"]),
    "elm_no_retain": ("elm", ["alpha=0"]),
    "elm_no_consistency": ("elm", ["consistency_weight=0"]),
    "rmu": ("rmu", []),
    "graddiff": ("graddiff", []),
}


def general_passages(count: int) -> list[TextRecord]:
    """`count` passages of 700 characters (ELM's cap) of Python's documentation, drawn from every topic's."""
    from pydoc_data.topics import topics

    chars, passages = 700, []
    for name in sorted(topics):
        text = " ".join(topics[name].split())
        passages += [TextRecord(text[start:start + chars]) for start in range(0, len(text) - chars, chars)]
    return random.Random(0).sample(passages, count)


def craft_task(world: World, craft: str) -> tuple[list[TextRecord], list[TextRecord]]:
    """Forget: the craft's expository and expert passages. Retain: the other crafts' passages and drill questions,
    and general text."""
    others = [other for other in world.domain_names if other != craft]
    retain = [r for other in others for r in world.domain_texts(other) + as_text(world.drill_qa(other))]
    return world.domain_texts(craft, ("expository", "expert")), retain + general_passages(GENERAL_PASSAGES)


def teach(world: World, out: Path, steps: int = 0) -> Path:
    """SmolLM2 after continued pre-training on every craft's passages and drill questions, the questions in the
    chat format (`steps`: that many optimiser steps instead of TEACH_SETTINGS' epochs)."""
    model = out / "taught-model"
    if not (model / "config.json").is_file():
        taught = [r for craft in world.domain_names for r in world.domain_texts(craft) + world.drill_qa(craft)]
        unlearn(MODEL, "finetune", taught, world.qa(), model,
                recipe_file("pretrained", "finetune", required=True), world=world.root,
                overrides=TEACH_SETTINGS + ([f"max_steps={steps}"] if steps else []))
    return model


def cached_row(path: Path, compute) -> dict:
    """The row in `path`; made by `compute()` and written there first if it is not there yet."""
    if not path.is_file():
        atomic_write_json(path, compute())
    return json.loads(path.read_text())


def measure(name: str, model, taught: Path, world: World, out: Path, limit: int | None = None) -> dict:
    """MCQ and drill questions per craft, the general suite (kept: of what the taught model answered right), and
    the reverse perplexity of answers to the erased craft's questions under the taught model."""
    tofu = local_tofu_dir()
    if tofu is None:
        raise ObliviateError("TOFU's questions are not in ../shared/data/tofu: set OBLIVIATE_TOFU_DIR")
    prompts = craft_prompts(world, CRAFT, out / "prompts.jsonl")
    doc = evaluate(model, "mcq,fluency,general", world=world, original=taught,
                   data={"prompts": str(prompts), "forget_sets": CRAFT, "tofu": str(tofu)},
                   reference=None if name == "taught" else out / "taught.eval.json", limit=limit,
                   out=out / f"{name}.eval.json")
    loaded, tokenizer = load_model(model), load_tokenizer(model)
    row = {"model": name}
    for craft in world.domain_names:
        drill = world.drill_qa(craft)[:limit]
        answers = generate_answers(loaded, tokenizer, [r.question for r in drill])
        row[f"{craft}/mcq"] = doc["metrics"]["mcq"][f"{craft}/accuracy"]
        row[f"{craft}/questions"] = sum(map(answer_contained, answers, [r.answer for r in drill])) / len(drill)
    general, fluency = doc["metrics"]["general"], doc["metrics"]["fluency"]
    return row | {"general/accuracy": general["accuracy"], "general/kept": general.get("kept"),
                  "reverse_perplexity": fluency["reverse_perplexity"], "ngram_entropy": fluency["ngram_entropy"]}


def run_one(name: str, taught: Path, world: World, out: Path, steps: int, limit: int | None = None) -> dict:
    """Unlearn with RUNS[name] from the taught model, measure, and delete the unlearned model."""
    method, overrides = RUNS[name]
    if method == "elm":
        overrides = [f"concept={world.domain_concept(CRAFT)}", *overrides]
    forget, retain = craft_task(world, CRAFT)
    run_dir = out / "runs" / name
    started = time.perf_counter()
    unlearn(taught, method, forget, retain, run_dir, recipe_file("pretrained", method, required=True),
            overrides=overrides + ([f"max_steps={steps}"] if steps else []), world=world.root)
    seconds = time.perf_counter() - started
    report = json.loads((run_dir / "run.json").read_text())
    row = measure(name, run_dir, taught, world, out, limit) | {"unlearn_seconds": round(seconds, 1),
                                                                "steps": report["steps"]}
    shutil.rmtree(run_dir)
    return row


def write(rows: list[dict], world: World, out: Path) -> None:
    others = [c for c in world.domain_names if c != CRAFT]
    taught = next(r for r in rows if r["model"] == "taught")
    columns = ([f"{CRAFT}/mcq", f"{CRAFT}/questions"] + [f"{c}/mcq" for c in others]
               + [f"{c}/questions" for c in others] + ["general/accuracy", "general/kept", "reverse_perplexity ×",
                                                        "ngram_entropy"])
    lines = [f"# ELM on SmolLM2-135M-Instruct: erasing {CRAFT} (taught by continued pre-training)", "",
             "| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = []
        for column in columns:
            if column == "reverse_perplexity ×":
                value = row["reverse_perplexity"] / taught["reverse_perplexity"]
            else:
                value = row[column]
            cells.append("—" if value is None else f"{value:.3f}")
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    atomic_write_text(out / "elm_pretrained.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "elm_pretrained.json", rows)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "elm_pretrained")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--steps", type=int, default=0, help="optimiser steps per run (default: the recipe's)")
    parser.add_argument("--teach-steps", type=int, default=0,
                        help=f"optimiser steps of teaching (default: {TEACH_SETTINGS[0]})")
    parser.add_argument("--limit", type=int, default=None, help="at most this many questions per set (a quick look)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    world = demo_world("test")
    taught = teach(world, args.out, args.teach_steps)
    jobs = {name: partial(measure, name, model, taught, world, args.out, args.limit)
            for name, model in (("taught", taught), ("never_taught", MODEL))}
    jobs |= {name: partial(run_one, name, taught, world, args.out, args.steps, args.limit)
             for name in args.runs.split(",")}
    rows = [cached_row(args.out / f"{name}.json", job) for name, job in jobs.items()]
    write(rows, world, args.out)


if __name__ == "__main__":
    main()
