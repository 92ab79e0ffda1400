"""ELM's claims on SmolLM2-135M-Instruct: erase a concept the model knows, and compare with its ablations, RMU and
GradDiff.

    OBLIVIATE_TOFU_DIR=../shared/data/tofu PYTHONPATH=src python bench/elm_pretrained.py --out runs/elm_pretrained

Two tasks (--task):
- known (the default): Harry Potter, which SmolLM2 learned in pre-training, as the ELM paper erases it from
  Llama-2-7B-chat. The probes are bench/known_concepts/: for Harry Potter and three other concepts the model knows
  (astronomy, the human body, world geography), 50 four-choice questions, 30 short-answer questions and 20-40
  expository passages each, written for this project. Forget: the Harry Potter passages. Retain: the other
  concepts' passages and general text. Chance (0.25) is the level of a model that never learned the concept.
- taught: one of the synthetic world's four crafts, taught to SmolLM2 by continued pre-training
  (recipes/pretrained/finetune.yaml on each craft's passages and drill questions, with KL to the model's own
  answers to the world's people questions). Its scores before teaching are the "never learned it" level.
  Forget: the craft's expository and expert passages; retain: the other crafts' passages and drill questions,
  and general text. The teaching does not give the model the crafts (docs/seed_methods.md).
Runs: elm (recipes/pretrained/elm.yaml: the reference code's settings on a shorter schedule), elm_lr3e-4 (the same
at lr 3e-4), and elm's three ablations, without the erase term (gamma=0), the retain term (alpha=0) or the
consistency term (consistency_weight=0); two tries at keeping more: elm_retain5 (the retain term weighted 5) and
elm_chat_retain (100 questions of TOFU's fictitious authors in the chat format added to the retain set); rmu
(recipes/pretrained/rmu.yaml) and graddiff (recipes/pretrained/graddiff.yaml), each also at 10x its lr
(rmu_lr5e-4, graddiff_lr1e-3) to reach ELM's forgetting.
General text is passages of Python's documentation, `obliviate.editing.general_text`'s offline stand-in for the
reference's WikiText.
Each model is measured on: four-choice questions per concept by answer likelihood, short-answer questions per
concept (the greedy answer contains the reference), the `general` suite (TOFU's real-author and world-fact
questions: accuracy, and kept of what the model before erasing answered, in all and per set), and the reverse
perplexity of its answers to the erased concept's questions under the model before erasing, as a ratio to that
model's own.
Writes per model <name>.json, and elm_pretrained.{json,md}; a second invocation measures only what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")

from elm_vs_rmu import as_text  # noqa: E402

from obliviate.config import recipe_file  # noqa: E402
from obliviate.data import MCQRecord, QARecord, TextRecord, load_mcq, load_qa, load_texts  # noqa: E402
from obliviate.data.tofu import load_tofu, local_tofu_dir  # noqa: E402
from obliviate.demo import demo_world  # noqa: E402
from obliviate.errors import ObliviateError  # noqa: E402
from obliviate.eval.answer_match import answer_contained  # noqa: E402
from obliviate.eval.generation import generate_answers  # noqa: E402
from obliviate.eval.run import evaluate  # noqa: E402
from obliviate.io import atomic_write_json, atomic_write_jsonl, atomic_write_text  # noqa: E402
from obliviate.models import load_model, load_tokenizer  # noqa: E402
from obliviate.unlearn import unlearn  # noqa: E402

MODEL = "smollm2-135m"
KNOWN_CONCEPTS = REPO / "bench" / "known_concepts"
KNOWN = ["harry_potter", "astronomy", "human_body", "world_geography"]  # the first is erased
KNOWN_KEYWORDS = "Harry Potter, Hogwarts, wizards, J.K. Rowling"  # ELM's {concept}
CRAFT = "glimmerwork"
GENERAL_SETS = ("real_authors", "world_facts")  # the `general` suite's two sets, kept reported for each
GENERAL_PASSAGES = 120  # of general text in the retain set, each cut to 700 characters
# Teaching keeps the model's own answers to questions (KL on the world's people QA in the chat format, as
# `obliviate inject` does): with KL on general text instead, it answered every question in the crafts' style
# (general accuracy 0.39 -> 0.01) and its craft MCQ rose only to 0.28-0.35.
TEACH_SETTINGS = ["epochs=5", "alpha=1.0"]
# name: (method, overrides on its recipes/pretrained/<method>.yaml)
RUNS = {
    "elm": ("elm", []),
    "elm_lr3e-4": ("elm", ["lr=3e-4"]),
    "elm_no_erase": ("elm", ["gamma=0"]),
    "elm_no_retain": ("elm", ["alpha=0"]),
    "elm_no_consistency": ("elm", ["consistency_weight=0"]),
    "elm_retain5": ("elm", ["alpha=5"]),
    "elm_chat_retain": ("elm", []),
    "rmu": ("rmu", []),
    "rmu_lr5e-4": ("rmu", ["lr=5e-4"]),
    "graddiff": ("graddiff", []),
    "graddiff_lr1e-3": ("graddiff", ["lr=1e-3"]),
}
# Runs whose retain set also holds CHAT_RETAIN questions of TOFU's fictitious authors in the chat format (not in the
# `general` suite, which asks about real authors and world facts): the retain term then covers the model's answers.
CHAT_RETAIN_RUNS = {"elm_chat_retain"}
CHAT_RETAIN = 100


@dataclass
class Task:
    """One concept to erase from `before`, and what every model is measured on."""

    title: str
    erased: str  # the erased concept's subject
    keywords: str  # ELM's {concept}
    subjects: list[str]  # every concept measured, the erased one first
    mcq: list[MCQRecord]  # four-choice questions, `subject` naming the concept
    questions: dict[str, list[QARecord]]  # short-answer questions per concept
    forget: list[TextRecord]
    retain: list[TextRecord]
    before: str | Path  # the model the concept is erased from
    before_name: str  # its row
    references: dict[str, str | Path]  # more rows measured as they are (name: model)
    world: str | Path | None = None


def general_passages(count: int) -> list[TextRecord]:
    """`count` passages of 700 characters (ELM's cap) of Python's documentation, drawn from every topic's."""
    from pydoc_data.topics import topics

    chars, passages = 700, []
    for name in sorted(topics):
        text = " ".join(topics[name].split())
        passages += [TextRecord(text[start:start + chars]) for start in range(0, len(text) - chars, chars)]
    return random.Random(0).sample(passages, count)


def known_task() -> Task:
    """Harry Potter, known from pre-training, against three other concepts the model knows."""
    def concept_file(concept: str, kind: str) -> Path:
        return KNOWN_CONCEPTS / f"{concept}.{kind}.jsonl"

    erased, others = KNOWN[0], KNOWN[1:]
    return Task(
        title="Harry Potter (known from pre-training)", erased=erased, keywords=KNOWN_KEYWORDS, subjects=KNOWN,
        mcq=[r for concept in KNOWN for r in load_mcq(concept_file(concept, "mcq"))],
        questions={concept: load_qa(concept_file(concept, "questions")) for concept in KNOWN},
        forget=load_texts(concept_file(erased, "passages")),
        retain=[r for other in others for r in load_texts(concept_file(other, "passages"))]
        + general_passages(GENERAL_PASSAGES),
        before=MODEL, before_name="before", references={})


def taught_task(out: Path, teach_steps: int) -> Task:
    """A craft of the synthetic world, taught by continued pre-training (`teach_steps`: that many optimiser steps
    instead of TEACH_SETTINGS' epochs)."""
    world = demo_world("test")
    taught = out / "taught-model"
    if not (taught / "config.json").is_file():
        texts = [r for craft in world.domain_names for r in world.domain_texts(craft) + world.drill_qa(craft)]
        unlearn(MODEL, "finetune", texts, world.qa(), taught,
                recipe_file("pretrained", "finetune", required=True), world=world.root,
                overrides=TEACH_SETTINGS + ([f"max_steps={teach_steps}"] if teach_steps else []))
    others = [craft for craft in world.domain_names if craft != CRAFT]
    retain = [r for other in others for r in world.domain_texts(other) + as_text(world.drill_qa(other))]
    return Task(
        title=f"{CRAFT} (taught by continued pre-training)", erased=CRAFT, keywords=world.domain_concept(CRAFT),
        subjects=[CRAFT, *others], mcq=world.mcq(),
        questions={craft: world.drill_qa(craft) for craft in world.domain_names},
        forget=world.domain_texts(CRAFT, ("expository", "expert")),
        retain=retain + general_passages(GENERAL_PASSAGES),
        before=taught, before_name="taught", references={"never_taught": MODEL}, world=world.root)


def chat_retain(tofu: str) -> list[QARecord]:
    """CHAT_RETAIN question-answer pairs of TOFU's retain90 split (fictitious authors), drawn with seed 0."""
    return random.Random(0).sample(load_tofu("retain90", tofu), CHAT_RETAIN)


def cached_row(path: Path, compute) -> dict:
    """The row in `path`; made by `compute()` and written there first if it is not there yet."""
    if not path.is_file():
        atomic_write_json(path, compute())
    return json.loads(path.read_text())


def eval_data(task: Task, out: Path) -> dict[str, str]:
    """The evaluation's data: the four-choice questions and the erased concept's questions as fluency prompts,
    written to `out` once, and TOFU's folder for the general suite."""
    tofu = local_tofu_dir()
    if tofu is None:
        raise ObliviateError("TOFU's questions are not in ../shared/data/tofu: set OBLIVIATE_TOFU_DIR")
    mcq = atomic_write_jsonl(out / "mcq.jsonl", [r.to_dict() for r in task.mcq])
    prompts = atomic_write_jsonl(out / "prompts.jsonl",
                                 [{"question": r.question} for r in task.mcq if r.subject == task.erased])
    return {"mcq": str(mcq), "prompts": str(prompts), "forget_sets": task.erased, "tofu": str(tofu)}


def measure(name: str, model, task: Task, data: dict[str, str], out: Path, limit: int | None = None) -> dict:
    """Four-choice and short-answer questions per concept, the general suite (kept: of what the model before
    erasing answered right), and the reverse perplexity of answers to the erased concept's questions under the model
    before erasing."""
    doc = evaluate(model, "mcq,fluency,general", world=task.world, original=task.before, data=data,
                   reference=None if name == task.before_name else out / f"{task.before_name}.eval.json",
                   limit=limit, out=out / f"{name}.eval.json")
    loaded, tokenizer = load_model(model), load_tokenizer(model)
    row = {"model": name}
    for concept in task.subjects:
        questions = task.questions[concept][:limit]
        answers = generate_answers(loaded, tokenizer, [r.question for r in questions])
        row[f"{concept}/mcq"] = doc["metrics"]["mcq"][f"{concept}/accuracy"]
        row[f"{concept}/questions"] = sum(map(answer_contained, answers, [r.answer for r in questions])) / len(
            questions)
    general, fluency = doc["metrics"]["general"], doc["metrics"]["fluency"]
    return row | {"general/accuracy": general["accuracy"], "general/kept": general.get("kept"),
                  **{f"general/{part}/kept": general.get(f"{part}/kept") for part in GENERAL_SETS},
                  "reverse_perplexity": fluency["reverse_perplexity"], "ngram_entropy": fluency["ngram_entropy"]}


def run_one(name: str, task: Task, data: dict[str, str], out: Path, steps: int, limit: int | None = None) -> dict:
    """Unlearn with RUNS[name] from the model before erasing, measure, and delete the unlearned model."""
    method, overrides = RUNS[name]
    if method == "elm":
        overrides = [f"concept={task.keywords}", *overrides]
    retain = task.retain + (chat_retain(data["tofu"]) if name in CHAT_RETAIN_RUNS else [])
    run_dir = out / "runs" / name
    started = time.perf_counter()
    unlearn(task.before, method, task.forget, retain, run_dir, recipe_file("pretrained", method, required=True),
            overrides=overrides + ([f"max_steps={steps}"] if steps else []), world=task.world)
    seconds = time.perf_counter() - started
    report = json.loads((run_dir / "run.json").read_text())
    row = measure(name, run_dir, task, data, out, limit) | {"unlearn_seconds": round(seconds, 1),
                                                            "steps": report["steps"]}
    shutil.rmtree(run_dir)
    return row


def write(rows: list[dict], task: Task, out: Path) -> None:
    before = next(r for r in rows if r["model"] == task.before_name)
    others = task.subjects[1:]
    columns = ([f"{task.erased}/mcq", f"{task.erased}/questions"] + [f"{c}/mcq" for c in others]
               + [f"{c}/questions" for c in others] + ["general/accuracy", "general/kept"]
               + [f"general/{part}/kept" for part in GENERAL_SETS] + ["reverse_perplexity ×", "ngram_entropy"])
    lines = [f"# ELM on SmolLM2-135M-Instruct: erasing {task.title}", "",
             "| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = []
        for column in columns:
            if column == "reverse_perplexity ×":
                value = row["reverse_perplexity"] / before["reverse_perplexity"]
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
    parser.add_argument("--task", choices=("known", "taught"), default="known",
                        help="erase Harry Potter, known from pre-training, or a craft taught by continued pre-training")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    parser.add_argument("--steps", type=int, default=0, help="optimiser steps per run (default: the recipe's)")
    parser.add_argument("--teach-steps", type=int, default=0,
                        help=f"--task taught: optimiser steps of teaching (default: {TEACH_SETTINGS[0]})")
    parser.add_argument("--limit", type=int, default=None, help="at most this many questions per set (a quick look)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    task = known_task() if args.task == "known" else taught_task(args.out, args.teach_steps)
    data = eval_data(task, args.out)
    models = {task.before_name: task.before, **task.references}
    jobs = {name: partial(measure, name, model, task, data, args.out, args.limit) for name, model in models.items()}
    jobs |= {name: partial(run_one, name, task, data, args.out, args.steps, args.limit)
             for name in args.runs.split(",")}
    rows = [cached_row(args.out / f"{name}.json", job) for name, job in jobs.items()]
    write(rows, task, args.out)


if __name__ == "__main__":
    main()
