"""UniErase on a pretrained chat model (methods.md §5): the facts it learned in pre-training, or people taught to it.

    PYTHONPATH=src python bench/unierase_pretrained.py [--model smollm2-135m] [--facts pretrained|taught] [--seed 0]
        [--work DIR] [--out bench/results/unierase_pretrained] [--set KEY=VALUE ...]
        [--runs batch,sequential,graddiff,graddiff_lr3e-4,graddiff_lr1e-3]

1. what the model knows:
   - pretrained (the default): TOFU's 217 general-knowledge questions (real_authors, world_facts), answered by greedy
     generation (the `general` suite); a known fact is one answered right. Each is keyed on the span of the question
     that names what it is about (`fact_subject`: a quoted title, else the last capitalised name);
   - taught: `TAUGHT` fictitious people taught to the model (`obliviate inject`, recipes/pretrained/finetune.yaml,
     6 facts each in 3 phrasings, as bench/entity_pretrained.py teaches them); a known question is one whose greedy
     answer contains the taught answer; each is keyed on the person's name;
2. forget 10% of the known facts, or of the taught people (seeded), keep the others;
3. UniErase with the published settings (recipes/tofu_pretrained/unierase.yaml): one batch edit of them all, and
   the same forget set in 5 sequential rounds, with the token the batch run trained (`token.reuse`: the same
   questions, settings and model, so stage 1 is trained once); for comparison, GradDiff
   (recipes/pretrained/graddiff.yaml for 20 steps, at its lr 1e-4, 3e-4 and 1e-3) on the same forget set, its retain
   term on 100 questions of TOFU's fictitious authors;
4. per run: the share of forget questions answered with a refusal and still answered right, the share of the
   other known questions still answered right, the share of the general-knowledge questions answered right before
   (the forget ones aside) still answered right, and for UniErase the share of the forget questions whose next
   token is the unlearning token, the changed parameters and the seconds per edit.

UniErase's targets (the issue's): ≥ 90% of the forget questions refused, ≥ 95% of the retained questions and of the
general knowledge kept, and ≥ 90% of the retained after 5 sequential rounds. Runs are cached in --work (taught
facts: its taught/ folder). Writes unierase_{pretrained,taught}.{md,json} to --out.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from obliviate.config import recipe_file
from obliviate.data import QARecord, load_tofu
from obliviate.data.tofu import local_tofu_dir
from obliviate.demo import demo_world
from obliviate.entity import inject
from obliviate.errors import ObliviateError
from obliviate.eval import metrics
from obliviate.eval.answer_match import answer_contained
from obliviate.eval.generation import generate_answers
from obliviate.eval.run import evaluate
from obliviate.io import atomic_write_json, atomic_write_text, cache_root
from obliviate.models import load_model, load_tokenizer
from obliviate.unlearn import unlearn
from obliviate.world import World

REPO = Path(__file__).resolve().parents[1]
SETS = ("real_authors", "world_facts")
FORGET_SHARE = 0.1
ROUNDS = 5
TARGETS = {"forget_refused": 0.9, "retained_kept": 0.95, "general_kept": 0.95}
TAUGHT = 10  # people taught, of whom FORGET_SHARE are forgotten
TAUGHT_ATTRIBUTES = ("profession", "birthplace", "birth_year", "notable_work", "award", "coauthor")
_TITLE = re.compile(r"(?:^|\s)['\"‘“](.+?)['\"’”](?=[\s?,.!]|$)")  # "'Midnight's Children'" whole
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][\w'-]*(?:\s+(?:of|the|de|and)?\s*[A-Z][\w'-]*)*")


def default_work(model: str) -> Path:
    """Where the evals and runs of `model` are cached by default (bench/unierase_reach.py shares it)."""
    return cache_root() / "unierase_pretrained" / "".join(c if c.isalnum() else "_" for c in model)


def fact_subject(question: str) -> str:
    """What a general-knowledge question is about: a quoted title ("Who wrote 'Pride and Prejudice'?"), else its last
    capitalised name not opening the sentence ("the Eiffel Tower", "Australia"), else the question itself."""
    if found := _TITLE.search(question):
        return found.group(1)
    names = [name.strip() for name in _NAME.findall(question) if name.strip()]
    return names[-1] if names else question.rstrip(" ?.!")


def right_general(eval_doc: dict) -> set[str]:
    """The general-knowledge questions an eval (`obliviate.eval.run.evaluate`'s document) found answered right."""
    return {row["question"] for row in eval_doc["per_sample"] if row["suite"] == "general" and row["correct"]}


def known_facts(model: str, work: Path, tofu: Path) -> tuple[list[QARecord], dict]:
    """The general-knowledge questions `model` answers right, keyed on their subjects, and its eval."""
    eval_file = work / "eval-before.json"
    if not eval_file.is_file():
        evaluate(model, "general", data={"tofu": str(tofu)}, label="before", out=eval_file)
    before = json.loads(eval_file.read_text())
    right = right_general(before)
    records = [record for split in SETS for record in load_tofu(split, tofu) if record.question in right]
    for record in records:
        record.subject = fact_subject(record.question)
    return records, before


def split_known(records: list[QARecord], seed: int) -> tuple[list[QARecord], list[QARecord]]:
    forget_count = max(ROUNDS, round(FORGET_SHARE * len(records)))
    chosen = set(random.Random(seed).sample(range(len(records)), forget_count))
    return ([r for i, r in enumerate(records) if i in chosen], [r for i, r in enumerate(records) if i not in chosen])


def answered(model_dir: Path, records: list[QARecord], tofu: Path) -> dict[str, dict]:
    """Each general-knowledge question's greedy answer by the model in `model_dir` and whether it is right (the
    `general` suite's eval, cached as eval.json), and the same for `records`' other questions (the answer contains the
    reference; cached as answers.json)."""
    eval_file, answers_file = model_dir / "eval.json", model_dir / "answers.json"
    if not eval_file.is_file():
        evaluate(str(model_dir), "general", data={"tofu": str(tofu)}, label=model_dir.name, out=eval_file)
    rows = {row["question"]: {"generation": row["generation"], "correct": bool(row["correct"])}
            for row in json.loads(eval_file.read_text())["per_sample"] if row["suite"] == "general"}
    others = [record for record in records if record.question not in rows]
    if others and not answers_file.is_file():
        answers = generate_answers(load_model(model_dir), load_tokenizer(model_dir), [r.question for r in others])
        atomic_write_json(answers_file, {r.question: {"generation": answer, "correct": answer_contained(answer, r.answer)}
                                         for r, answer in zip(others, answers)})
    return rows | (json.loads(answers_file.read_text()) if others else {})


def measure(run_dir: Path, forget: list[QARecord], kept: list[QARecord], general_before: set[str],
            tofu: Path) -> dict:
    """Refusals and right answers on the forget questions, right answers on the kept ones and on the general questions
    answered right before (the forget ones aside); the edit's figures from run.json (None for a trained run)."""
    rows = answered(run_dir, forget + kept, tofu)
    report = json.loads((run_dir / "run.json").read_text())
    general = general_before - {r.question for r in forget}
    return {"forget_refused": metrics.refusal_rate([rows[r.question]["generation"] for r in forget]),
            "forget_still_right": sum(rows[r.question]["correct"] for r in forget) / len(forget),
            "retained_kept": sum(rows[r.question]["correct"] for r in kept) / len(kept),
            "general_kept": sum(rows[question]["correct"] for question in general) / len(general),
            **{key: report.get(key) for key in ("token_emitted", "changed_fraction", "seconds_per_edit",
                                                "token_seconds", "edit_seconds")}}


# name: (label, method, recipe folder, overrides)
RUNS = {"batch": ("batch", "unierase", "tofu_pretrained", ["mode=batch"]),
        # with the batch run's token (token.reuse, added in `run`): stage 1 is the same, so it is trained once
        "sequential": (f"{ROUNDS} sequential rounds", "unierase", "tofu_pretrained",
                       ["mode=sequential", f"rounds={ROUNDS}"]),
        # the GA family's comparison: GradDiff trained to forget the same facts, its GD term on GD_RETAIN questions of
        # TOFU's fictitious authors (neither the forget nor the kept facts)
        "graddiff": ("GradDiff, lr 1e-4, 20 steps", "graddiff", "pretrained", ["max_steps=20"]),
        "graddiff_lr3e-4": ("GradDiff, lr 3e-4, 20 steps", "graddiff", "pretrained", ["lr=3e-4", "max_steps=20"]),
        "graddiff_lr1e-3": ("GradDiff, lr 1e-3, 20 steps", "graddiff", "pretrained", ["lr=1e-3", "max_steps=20"])}
GD_RETAIN = 100


def tofu_dir() -> Path:
    tofu = local_tofu_dir()
    if tofu is None:
        raise ObliviateError("TOFU's general-knowledge questions are needed: set OBLIVIATE_TOFU_DIR")
    return tofu


def forget_and_kept(model: str, work: Path, seed: int) -> tuple[list[QARecord], list[QARecord], list[QARecord], dict,
                                                                   Path]:
    """The facts `model` knows, split by `seed` into those to forget and those kept: (known, forget, kept, the eval
    before, the TOFU directory). bench/unierase_reach.py forgets the same ones."""
    tofu = tofu_dir()
    work.mkdir(parents=True, exist_ok=True)
    known, before = known_facts(model, work, tofu)
    return known, *split_known(known, seed), before, tofu


def pretrained_facts(model: str, work: Path, seed: int) -> dict:
    known, forget, kept, before, tofu = forget_and_kept(model, work, seed)
    right = right_general(before)
    return {"model": model, "known": known, "forget": forget, "kept": kept, "general_before": right, "tofu": tofu,
            "summary": f"Known before: {len(known)} of 217 general-knowledge questions "
                       f"({ {s: sum(r.split == s for r in known) for s in SETS} }); forget {len(forget)}, keep "
                       f"{len(kept)}."}


def taught_facts(model: str, work: Path, seed: int) -> dict:
    """`TAUGHT` people taught to `model` (in work/taught-model), the questions about them it answers right, those about
    `FORGET_SHARE` of them (seeded) to forget."""
    tofu, taught = tofu_dir(), work / "taught-model"
    if not (taught / "entities" / "world.json").is_file():
        inject(model, TAUGHT, taught, seed, world=demo_world("test").root,
               config=recipe_file("pretrained", "finetune", required=True), attributes=list(TAUGHT_ATTRIBUTES))
    questions = World(taught / "entities").trained_qa()
    rows = answered(taught, questions, tofu)
    known = [r for r in questions if rows[r.question]["correct"]]
    people = sorted({r.meta["entity_id"] for r in known})
    forgotten = set(random.Random(seed).sample(people, max(1, round(FORGET_SHARE * len(people)))))
    forget = [r for r in known if r.meta["entity_id"] in forgotten]
    kept = [r for r in known if r.meta["entity_id"] not in forgotten]
    taught_questions = {r.question for r in questions}
    right = {question for question, row in rows.items() if row["correct"] and question not in taught_questions}
    return {"model": taught, "known": known, "forget": forget, "kept": kept,
            "general_before": right, "tofu": tofu,
            "summary": f"Taught {TAUGHT} people, {len(TAUGHT_ATTRIBUTES)} facts each in 3 phrasings: "
                       f"{len(known)} of {len(questions)} questions answered right, about {len(people)} people; "
                       f"forget {len(forgotten)} ({len(forget)} questions), keep {len(known) - len(forget)}. "
                       f"General knowledge right before: {len(right)} of 217."}


def run(model: str, facts: str, work: Path, seed: int, overrides: list[str], runs: list[str]) -> dict:
    split = (taught_facts if facts == "taught" else pretrained_facts)(model, work, seed)
    forget, kept = split["forget"], split["kept"]
    rows = []
    for name in runs:
        label, method, recipes, settings = RUNS[name]
        run_dir = work / (f"unierase-{name}-seed{seed}" if method == "unierase" else f"{name}-seed{seed}")
        if not (run_dir / "run.json").is_file():
            if method == "unierase":
                trained = work / f"unierase-batch-seed{seed}"
                reuse = [f"token.reuse={trained}"] if name != "batch" and (trained / "run.json").is_file() else []
                settings = [*settings, f"token.seed={seed}", *reuse, *overrides]
                retain = None
            else:
                settings = [*settings, f"seed={seed}"]
                retain = random.Random(seed).sample(load_tofu("retain90", split["tofu"]), GD_RETAIN)
            unlearn(split["model"], method, forget, retain, run_dir, recipe_file(recipes, method, required=True),
                    overrides=settings)
        rows.append({"run": label, **measure(run_dir, forget, kept, split["general_before"], split["tofu"])})
    return {"model": model, "facts": facts, "seed": seed, "summary": split["summary"],
            "forget": [{"question": r.question, "subject": r.subject} for r in forget], "kept": len(kept),
            "general_right_before": len(split["general_before"]), "rows": rows}


def markdown(result: dict) -> str:
    what = "people taught to it" if result["facts"] == "taught" else "own knowledge"
    lines = [f"# UniErase on {result['model']}'s {what} (seed {result['seed']})", "", result["summary"], "",
             "| run | forget refused | forget still right | token emitted | retained kept | general kept | "
             "changed fraction | s / edit |", "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cells = [f"{row[key]:{spec}}" if row[key] is not None else "—" for key, spec in
                 (("forget_refused", ".3f"), ("forget_still_right", ".3f"), ("token_emitted", ".3f"),
                  ("retained_kept", ".3f"), ("general_kept", ".3f"), ("changed_fraction", ".5f"),
                  ("seconds_per_edit", ".2f"))]
        lines.append(f"| {row['run']} | " + " | ".join(cells) + " |")
    lines += ["", "Targets: " + ", ".join(f"{k} ≥ {v}" for k, v in TARGETS.items()) + " (sequential: retained ≥ 0.9).",
              "", "Forget questions and their subjects:", ""]
    lines += [f"- {item['question']} — `{item['subject']}`" for item in result["forget"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="a chat model: named offline model, .gguf or dir")
    parser.add_argument("--facts", choices=("pretrained", "taught"), default="pretrained",
                        help="the model's own general knowledge, or people taught to it")
    parser.add_argument("--seed", type=int, default=0,
                        help="which facts or people are forgotten; the token's and the teaching's seed")
    parser.add_argument("--work", type=Path, default=None, help="where the evals and runs are cached")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "unierase_pretrained")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="over UniErase's recipe (give such runs a --work of their own)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    args = parser.parse_args()
    runs = args.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        sys.exit(f"error: --runs: unknown {sorted(unknown)}; choose from {', '.join(RUNS)}")
    work = args.work or default_work(args.model) / ("taught" if args.facts == "taught" else "")
    try:
        result = run(args.model, args.facts, work, args.seed, args.overrides, runs)
    except ObliviateError as error:
        sys.exit(f"error: {error}")
    name = f"unierase_{args.facts}"
    atomic_write_json(args.out / f"{name}.json", result)
    atomic_write_text(args.out / f"{name}.md", markdown(result))
    print(markdown(result))
    print(f"wrote {args.out}/{name}.{{md,json}}")


if __name__ == "__main__":
    main()
