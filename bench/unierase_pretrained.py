"""UniErase on what a pretrained chat model knows (methods.md §5): SmolLM2-135M-Instruct's own facts.

    PYTHONPATH=src python bench/unierase_pretrained.py [--model smollm2-135m] [--seed 0] [--work DIR]
        [--out bench/results/unierase_pretrained] [--set KEY=VALUE ...]
        [--runs batch,sequential,graddiff,graddiff_lr1e-3]

1. what the model knows: TOFU's 217 general-knowledge questions (real_authors, world_facts), answered by greedy
   generation (the `general` suite); a known fact is one answered right. Each is keyed on the span of the question
   that names what it is about (`fact_subject`: a quoted title, else the last capitalised name);
2. forget 10% of the known facts (seeded), keep the others;
3. UniErase with the published settings (recipes/tofu_pretrained/unierase.yaml): one batch edit of them all, and
   the same forget set in 5 sequential rounds; for comparison, GradDiff (recipes/pretrained/graddiff.yaml for 20
   steps, at its lr 1e-4 and at 1e-3) on the same forget set, its retain term on 100 questions of TOFU's fictitious
   authors;
4. per run: the share of forget questions answered with a refusal and still answered right, the share of the
   other known facts still answered right, and for UniErase the share of the forget questions whose next token
   is the unlearning token, the changed parameters and the seconds per edit.

UniErase's targets (the issue's): ≥ 90% of the forget questions refused, ≥ 95% of the retained facts kept, and
≥ 90% after 5 sequential rounds. Runs are cached in --work. Writes unierase_pretrained.{md,json} to --out.
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
from obliviate.errors import ObliviateError
from obliviate.eval import metrics
from obliviate.eval.run import evaluate
from obliviate.io import atomic_write_json, atomic_write_text, cache_root
from obliviate.unlearn import unlearn

REPO = Path(__file__).resolve().parents[1]
SETS = ("real_authors", "world_facts")
FORGET_SHARE = 0.1
ROUNDS = 5
TARGETS = {"forget_refused": 0.9, "retained_kept": 0.95}
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


def known_facts(model: str, work: Path, tofu: Path) -> tuple[list[QARecord], dict]:
    """The general-knowledge questions `model` answers right, keyed on their subjects, and its eval."""
    eval_file = work / "eval-before.json"
    if not eval_file.is_file():
        evaluate(model, "general", data={"tofu": str(tofu)}, label="before", out=eval_file)
    before = json.loads(eval_file.read_text())
    right = {row["question"] for row in before["per_sample"] if row["suite"] == "general" and row["correct"]}
    records = [record for split in SETS for record in load_tofu(split, tofu) if record.question in right]
    for record in records:
        record.subject = fact_subject(record.question)
    return records, before


def split_known(records: list[QARecord], seed: int) -> tuple[list[QARecord], list[QARecord]]:
    forget_count = max(ROUNDS, round(FORGET_SHARE * len(records)))
    chosen = set(random.Random(seed).sample(range(len(records)), forget_count))
    return ([r for i, r in enumerate(records) if i in chosen], [r for i, r in enumerate(records) if i not in chosen])


def measure(run_dir: Path, forget: list[QARecord], kept: list[QARecord], tofu: Path) -> dict:
    """Refusals and right answers on the forget questions, right answers on the other known facts; the edit's
    figures from run.json (None for a trained run)."""
    eval_file = run_dir / "eval.json"
    if not eval_file.is_file():
        evaluate(str(run_dir), "general", data={"tofu": str(tofu)}, label=run_dir.name, out=eval_file)
    rows = {row["question"]: row for row in json.loads(eval_file.read_text())["per_sample"]
            if row["suite"] == "general"}
    report = json.loads((run_dir / "run.json").read_text())
    forget_generations = [rows[r.question]["generation"] for r in forget]
    return {"forget_refused": metrics.refusal_rate(forget_generations),
            "forget_still_right": sum(rows[r.question]["correct"] for r in forget) / len(forget),
            "retained_kept": sum(rows[r.question]["correct"] for r in kept) / len(kept),
            **{key: report.get(key) for key in ("token_emitted", "changed_fraction", "seconds_per_edit",
                                                "token_seconds", "edit_seconds")}}


# name: (label, method, recipe folder, overrides)
RUNS = {"batch": ("batch", "unierase", "tofu_pretrained", ["mode=batch"]),
        "sequential": (f"{ROUNDS} sequential rounds", "unierase", "tofu_pretrained",
                       ["mode=sequential", f"rounds={ROUNDS}"]),
        # the GA family's comparison: GradDiff trained to forget the same facts, its GD term on GD_RETAIN questions of
        # TOFU's fictitious authors (neither the forget nor the kept facts)
        "graddiff": ("GradDiff, lr 1e-4, 20 steps", "graddiff", "pretrained", ["max_steps=20"]),
        "graddiff_lr1e-3": ("GradDiff, lr 1e-3, 20 steps", "graddiff", "pretrained", ["lr=1e-3", "max_steps=20"])}
GD_RETAIN = 100


def forget_and_kept(model: str, work: Path, seed: int) -> tuple[list[QARecord], list[QARecord], list[QARecord], dict,
                                                                   Path]:
    """The facts `model` knows, split by `seed` into those to forget and those kept: (known, forget, kept, the eval
    before, the TOFU directory). bench/unierase_reach.py forgets the same ones."""
    tofu = local_tofu_dir()
    if tofu is None:
        raise ObliviateError("TOFU's general-knowledge questions are needed: set OBLIVIATE_TOFU_DIR")
    work.mkdir(parents=True, exist_ok=True)
    known, before = known_facts(model, work, tofu)
    return known, *split_known(known, seed), before, tofu


def run(model: str, work: Path, seed: int, overrides: list[str], runs: list[str]) -> dict:
    known, forget, kept, before, tofu = forget_and_kept(model, work, seed)
    rows = []
    for name in runs:
        label, method, recipes, settings = RUNS[name]
        run_dir = work / (f"unierase-{name}-seed{seed}" if method == "unierase" else f"{name}-seed{seed}")
        if not (run_dir / "run.json").is_file():
            if method == "unierase":
                settings = [*settings, f"token.seed={seed}", *overrides]
                retain = None
            else:
                settings = [*settings, f"seed={seed}"]
                retain = random.Random(seed).sample(load_tofu("retain90", tofu), GD_RETAIN)
            unlearn(model, method, forget, retain, run_dir, recipe_file(recipes, method, required=True),
                    overrides=settings)
        rows.append({"run": label, **measure(run_dir, forget, kept, tofu)})
    return {"model": model, "seed": seed, "known": len(known), "known_by_set": {s: sum(r.split == s for r in known)
            for s in SETS}, "forget": [{"question": r.question, "subject": r.subject} for r in forget],
            "kept": len(kept), "general_accuracy_before": before["metrics"]["general"]["accuracy"], "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"# UniErase on {result['model']}'s own knowledge (seed {result['seed']})", "",
             f"Known before: {result['known']} of 217 general-knowledge questions ({result['known_by_set']}); "
             f"forget {len(result['forget'])}, keep {result['kept']}.", "",
             "| run | forget refused | forget still right | token emitted | retained kept | changed fraction | "
             "s / edit |", "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        cells = [f"{row[key]:{spec}}" if row[key] is not None else "—" for key, spec in
                 (("forget_refused", ".3f"), ("forget_still_right", ".3f"), ("token_emitted", ".3f"),
                  ("retained_kept", ".3f"), ("changed_fraction", ".5f"), ("seconds_per_edit", ".2f"))]
        lines.append(f"| {row['run']} | " + " | ".join(cells) + " |")
    lines += ["", "Targets: " + ", ".join(f"{k} ≥ {v}" for k, v in TARGETS.items()) + " (sequential: retained ≥ 0.9).",
              "", "Forget questions and their subjects:", ""]
    lines += [f"- {item['question']} — `{item['subject']}`" for item in result["forget"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="a chat model: named offline model, .gguf or dir")
    parser.add_argument("--seed", type=int, default=0, help="which known facts are forgotten; the token's seed")
    parser.add_argument("--work", type=Path, default=None, help="where the evals and runs are cached")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "unierase_pretrained")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="over UniErase's recipe (give such runs a --work of their own)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    args = parser.parse_args()
    runs = args.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        sys.exit(f"error: --runs: unknown {sorted(unknown)}; choose from {', '.join(RUNS)}")
    work = args.work or default_work(args.model)
    try:
        result = run(args.model, work, args.seed, args.overrides, runs)
    except ObliviateError as error:
        sys.exit(f"error: {error}")
    atomic_write_json(args.out / "unierase_pretrained.json", result)
    atomic_write_text(args.out / "unierase_pretrained.md", markdown(result))
    print(markdown(result))
    print(f"wrote {args.out}/unierase_pretrained.{{md,json}}")


if __name__ == "__main__":
    main()
