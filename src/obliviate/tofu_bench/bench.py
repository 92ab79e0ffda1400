"""`obliviate bench tofu`: TOFU end to end on the real data, and its leaderboard.

    from obliviate.tofu_bench.bench import TofuBenchConfig, run_tofu_bench
    if __name__ == "__main__":  # the two models may train in "spawn" processes, which import the script
        run_tofu_bench(TofuBenchConfig(data="../shared/data/tofu", out="bench/tofu", split="forget01"))

1. trains (or fetches from the cache) a tokenizer, the full model (all 4,000 QA) and the split's
   retain model (models.py), both also on TOFU's 217 general-knowledge QA (data.py); or, with `base_model`,
   fine-tunes a pretrained model on the full and the retain split with TOFU's protocol; or, with
   `full_model` and `retain_model`, starts from those checkpoints (local directories or hub names);
2. evaluates the retain model with the tofu and mia suites: its eval JSON is the reference of
   forget quality and PrivLeak, and its forget quality against itself is 1 by construction;
3. unlearns the split from the full model with each method (its recipe: obliviate/recipes/tofu/<method>.yaml
   for the models trained from scratch, obliviate/recipes/tofu_pretrained/unlearn.yaml, open-unlearning's TOFU
   trainer settings, for a real model; over the method's defaults; each point of the sweep grid) and
   evaluates the result;
4. writes leaderboard.md, leaderboard.json and report.html into `out`.

Membership inference: the forget answers against TOFU's holdout split of the same size (QA about authors
no model learns), or, where the data lacks it, a stand-in: the first perturbed (wrong) answer of each
forget question. The leaderboard says which.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from obliviate.tofu_bench.leaderboard import Row, choose, row_from_eval, sweep_points, write_leaderboard
from obliviate.tofu_bench.data import TofuData
from obliviate.tofu_bench.models import (
    PRETRAINED_RECIPES,
    TofuPreset,
    accelerator_overrides,
    build_full_and_retain,
    finetune_recipe,
    finetune_tofu_model,
    get_tofu_preset,
    training_record,
)
from obliviate.tofu_bench.report import write_tofu_report
from obliviate.config import recipe_file
from obliviate.errors import ObliviateError
from obliviate.eval.reference import Reference
from obliviate.eval.run import evaluate
from obliviate.eval.suites.comparisons import forget_quality
from obliviate.eval.metrics import MIA_SCORES, privleak
from obliviate.io import atomic_write_json, atomic_write_jsonl
from obliviate.unlearn import unlearn
from obliviate.unlearn.run import resolve_config
from obliviate.unlearn.registry import all_methods, get_method

SUITES = "tofu,mia"
# Registered methods that do not unlearn a set of QA pairs, left out of the default list.
NOT_FOR_QA = {
    "elm": "erases a concept from guided generations (concept=, elm_data=), not QA pairs",
    "finetune": "fine-tunes on the given data: it learns the forget set, it does not unlearn it",
}


@dataclass(frozen=True)
class TofuBenchConfig:
    data: Path | str
    out: Path | str
    split: str = "forget10"
    preset: str = "test"
    methods: tuple[str, ...] = ()  # empty: every registered method that unlearns QA pairs
    authors: int | None = None  # train on the split's authors and the first others, this many in all
    sweep: dict[str, list[str]] = field(default_factory=dict)  # config key → values: a grid per method
    base_model: str | None = None  # fine-tune this pretrained model into the full and retain models
    full_model: str | None = None  # or start from these checkpoints (both, local directories or hub names)
    retain_model: str | None = None
    finetune_overrides: tuple[str, ...] = ()  # KEY=VALUE over recipes/tofu_pretrained/finetune.yaml

    @property
    def real_model(self) -> bool:
        return bool(self.base_model or self.full_model)


def _check_models(config: TofuBenchConfig) -> None:
    if config.base_model and (config.full_model or config.retain_model):
        raise ObliviateError("--base-model fine-tunes its own full and retain models: give it, or --full-model "
                             "and --retain-model, not both")
    if bool(config.full_model) != bool(config.retain_model):
        raise ObliviateError("--full-model and --retain-model go together: the retain model is the reference of "
                             "forget quality and PrivLeak")
    if config.finetune_overrides and not config.base_model:
        raise ObliviateError("--finetune-set changes how --base-model is fine-tuned; without --base-model nothing "
                             "is fine-tuned")


def default_methods() -> list[str]:
    return [method.name for method in all_methods() if method.name not in NOT_FOR_QA]


def _check_methods(names: tuple[str, ...]) -> list[str]:
    for name in names:
        get_method(name)
        if name in NOT_FOR_QA:
            raise ObliviateError(f"method {name} does not fit the TOFU benchmark: it {NOT_FOR_QA[name]}")
    return list(names) or default_methods()


class TofuBench:
    def __init__(self, config: TofuBenchConfig):
        _check_models(config)
        self.config = config
        self.data = TofuData(Path(config.data), config.split, config.authors)
        self.preset: TofuPreset = get_tofu_preset(config.preset)
        self.methods = _check_methods(config.methods)
        self.points = sweep_points(config.sweep)
        self.recipes = {method: self.recipe(method) for method in self.methods}
        for method, point in itertools.product(self.methods, self.points):  # bad settings fail before training
            resolve_config(get_method(method), self.recipes[method], self.overrides(method, point))
        if config.base_model:
            resolve_config(get_method("finetune"), finetune_recipe(), list(config.finetune_overrides))
        self.out = Path(config.out)
        self.suite_data = {"tofu": str(self.data.root), "forget_split": config.split,
                           "forget": str(self.out / "data" / "mia_forget.jsonl"),
                           "holdout": str(self.out / "data" / "mia_holdout.jsonl")}

    def recipe(self, method: str) -> Path:
        """recipes/tofu/<method>.yaml for the models trained from scratch; for a real model, the method's own
        recipes/tofu_pretrained/<method>.yaml if there is one (UniErase), else the one shared by the methods that
        train, open-unlearning's TOFU trainer settings."""
        if not self.config.real_model:
            return recipe_file("tofu", method, required=True)
        return recipe_file(PRETRAINED_RECIPES, method) or recipe_file(PRETRAINED_RECIPES, "unlearn", required=True)

    def evaluate(self, model: Path, label: str, out: Path | None, reference: Path | None = None) -> dict:
        return evaluate(model, SUITES, data=self.suite_data, reference=reference, limit=self.preset.eval_limit,
                        label=label, out=out)

    def write_mia_data(self) -> None:
        forget = self.data.forget
        atomic_write_jsonl(self.suite_data["forget"], [{"question": r.question, "answer": r.answer} for r in forget])
        holdout, _ = self.data.membership_holdout
        atomic_write_jsonl(self.suite_data["holdout"], [{"question": q, "answer": a} for q, a in holdout])

    def reference_rows(self, full: Path, retain: Path) -> list[Row]:
        """[retain model, full model]; the retain model's eval becomes the reference of every other."""
        evals = self.out / "evals"
        retain_eval = against_itself(self.evaluate(retain, "retain model", None))
        atomic_write_json(evals / "retain.json", retain_eval)
        full_eval = self.evaluate(full, "full model", evals / "full.json", reference=evals / "retain.json")
        models = (("retain model", "retain", retain_eval, retain), ("full model", "full", full_eval, full))
        return [row_from_eval(label, document, training_record(model).get("train_seconds", 0.0),
                              evals / f"{file}.json") for label, file, document, model in models]

    def trial(self, full: Path, method: str, point: dict[str, str]) -> Row:
        """Unlearn with one point of the method's grid, then evaluate against the retain model."""
        run_name = "-".join([method, *(f"{key}{value}" for key, value in point.items())])
        run_dir = self.out / "runs" / run_name
        started = time.perf_counter()
        # A model edit (UniErase) preserves what its recipe names, general text as published: the retain authors'
        # QA share the forget questions' templates, so their keys would leave the edit no room.
        retain = self.data.retain if get_method(method).trains else None
        unlearn(full, method, self.data.forget, retain, run_dir, config=self.recipes[method],
                overrides=self.overrides(method, point))
        seconds = time.perf_counter() - started
        eval_path = run_dir / "eval" / "tofu.json"
        document = self.evaluate(run_dir, run_name, eval_path, reference=self.out / "evals" / "retain.json")
        settings = hyperparameters(self.recipes[method], run_dir, point)
        return row_from_eval(method, document, seconds, eval_path, settings)

    def overrides(self, method: str, point: dict[str, str]) -> list[str]:
        """The sweep point's settings, after bf16 mixed precision on a GPU for a real model's training loop."""
        precision = accelerator_overrides() if self.config.real_model and get_method(method).trains else []
        return precision + [f"{key}={value}" for key, value in point.items()]

    def models(self) -> tuple[Path | str, Path | str]:
        """The full and retain models: trained from scratch, fine-tuned from --base-model, or as given."""
        config = self.config
        if config.full_model:
            return config.full_model, config.retain_model
        if config.base_model:
            overrides = list(config.finetune_overrides)
            return (finetune_tofu_model(config.base_model, self.data.full, "full", overrides),
                    finetune_tofu_model(config.base_model, self.data.retain, self.data.retain_name, overrides))
        return build_full_and_retain(self.data, self.preset)

    def run(self) -> Path:
        started = time.perf_counter()
        self.write_mia_data()
        full, retain = self.models()
        reference_rows = self.reference_rows(full, retain)
        retain_utility = reference_rows[0].metrics["model_utility"] or 0.0
        trials = {method: [self.trial(full, method, point) for point in self.points] for method in self.methods}
        chosen = [choose(rows, retain_utility) for rows in trials.values()]
        model = self.config.base_model or (self.config.full_model and Path(self.config.full_model).name)
        title = f"TOFU {self.config.split} leaderboard ({model or f'{self.preset.name} preset'})"
        facts = self.facts(full, retain, time.perf_counter() - started)
        write_leaderboard(self.out, title, facts, reference_rows, chosen, trials, swept=len(self.points) > 1)
        write_tofu_report(self.out / "report.html", title, " ".join(facts), reference_rows, chosen)
        return self.out

    def facts(self, full: Path | str, retain: Path | str, seconds: float) -> list[str]:
        full_info, retain_info = training_record(full), training_record(retain)
        authors = "all 200 authors" if self.config.authors is None else f"{self.config.authors} authors"
        limit = f"at most {self.preset.eval_limit} samples per set" if self.preset.eval_limit else "every sample"
        if self.config.full_model:
            models = f"models: the checkpoints {self.config.full_model} (full) and {self.config.retain_model} (retain)"
        elif self.config.base_model:
            models = (f"models: {self.config.base_model} fine-tuned with TOFU's protocol ({full_info['epochs']} epochs, "
                      f"{full_info['parameters'] / 1e6:.1f} M parameters trained, {full_info['train_seconds']:.0f} s "
                      f"and {retain_info['train_seconds']:.0f} s)")
        else:
            authors += (f" and {len(self.data.general)} general-knowledge QA (real_authors, world_facts) both models "
                        "learn")
            models = (f"models: {full_info['parameters'] / 1e6:.2f} M parameters, {self.preset.model.epochs} epochs, "
                      f"{full_info['tokens_per_second']} tokens/s in training (full model)")
        return [
            f"data: {self.data.root}, {authors}; full model: {len(self.data.full)} QA, retain model "
            f"({self.data.retain_name}): {len(self.data.retain)} QA, forget set: {len(self.data.forget)} QA",
            models,
            f"evaluation: suites {SUITES}, {limit}; reference: the retain model; membership holdout: "
            f"{self.data.membership_holdout[1]}",
            f"total wall time of this run: {seconds:.0f} s (cached models count 0)",
        ]


def against_itself(document: dict) -> dict:
    """The retain model's eval with its forget quality and PrivLeak against itself (1 and 0 by construction)."""
    reference = Reference(document, "retain model")
    forget_rows = [row for row in document["per_sample"] if row["suite"] == "tofu" and row["set"] == "forget"]
    document["metrics"]["tofu"] |= forget_quality(reference, "tofu", "forget", forget_rows)
    mia = document["metrics"]["mia"]
    mia |= {f"privleak_{score}": privleak(mia[f"auc_{score}"], mia[f"auc_{score}"]) for score in MIA_SCORES}
    return document


def hyperparameters(recipe: Path, run_dir: Path, point: dict[str, str]) -> dict:
    """lr and epochs, and every setting the recipe or the sweep point gives, as the run resolved them."""
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    given = yaml.safe_load(recipe.read_text()) or {}
    return {key: resolved[key] for key in dict.fromkeys(["lr", "epochs", *given, *point]) if key in resolved}


def run_tofu_bench(config: TofuBenchConfig) -> Path:
    return TofuBench(config).run()


def load_leaderboard(out: Path | str) -> dict:
    return json.loads((Path(out) / "leaderboard.json").read_text())
