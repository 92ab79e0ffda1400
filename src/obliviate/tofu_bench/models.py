"""The TOFU benchmark's models: the full and retain models, trained from scratch or fine-tuned from a real one.

From scratch (the default): the tiny-model recipe of `obliviate.models.tiny` (tokenizer, Llama architecture,
training loop) applied to TOFU QA, with the loss on answer tokens only. The tokenizer learns retain90's text,
so it has never read a forget answer of any split.

From a pretrained model (`--base-model`): TOFU's fine-tuning protocol (recipes/tofu_pretrained/finetune.yaml),
run through `obliviate unlearn`'s `finetune` method on the full and the retain split, each on its own.

Builds are cached under the cache root by a hash of the QA pairs trained on, the preset or base model and
recipe, and `RECIPE_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml

from obliviate.tofu_bench.data import TofuData, fingerprint
from obliviate.data import QARecord
from obliviate.config import recipe_file
from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json, cache_root, content_digest
from obliviate.models.tiny import Preset, build_model, train_from_scratch, train_tokenizer
from obliviate.prompts import encode_qa

RECIPE_VERSION = 1
TRAINING_FILE = "train.json"
PRETRAINED_RECIPES = "tofu_pretrained"  # obliviate/recipes/tofu_pretrained: fine-tuning and unlearning a real model


@dataclass(frozen=True)
class TofuPreset:
    name: str
    model: Preset  # architecture and training schedule of the full and retain models
    eval_limit: int | None = None  # at most this many samples per evaluation set (None: all)


TOFU_PRESETS = {
    # About 1M parameters, 12 epochs over all 4,000 QA (fewer leave the full model's forget quality
    # above 0.01 on forget01); every evaluation set cut to 40 samples.
    "test": TofuPreset("test", Preset("tofu-test", vocab_size=2048, hidden_size=128, layers=4, heads=4,
                                      intermediate_size=384, epochs=12, batch_size=8, learning_rate=2e-3),
                       eval_limit=40),
    # The test model for a few authors (--authors 6 in the tests): more epochs, as an epoch has fewer steps.
    "ci": TofuPreset("ci", Preset("tofu-ci", vocab_size=2048, hidden_size=128, layers=4, heads=4,
                                  intermediate_size=384, epochs=40, batch_size=16, learning_rate=2e-3),
                     eval_limit=20),
    "small": TofuPreset("small", Preset("tofu-small", vocab_size=2048, hidden_size=192, layers=4, heads=4,
                                        intermediate_size=512, epochs=16, batch_size=16, learning_rate=2e-3)),
}


def get_tofu_preset(name: str) -> TofuPreset:
    if name not in TOFU_PRESETS:
        raise ObliviateError(f"unknown TOFU preset '{name}' (choose from: {', '.join(TOFU_PRESETS)})")
    return TOFU_PRESETS[name]


def build_tokenizer(data: TofuData, preset: TofuPreset) -> Path:
    """The benchmark's tokenizer (cached)."""
    texts = data.tokenizer_texts()
    identity = {"texts": hashlib.sha256("\n".join(texts).encode()).hexdigest(), "vocab": preset.model.vocab_size,
                "recipe": RECIPE_VERSION}
    target = cache_root() / "tofu" / f"tokenizer-{content_digest(identity)}"
    if not (target / "tokenizer.json").is_file():
        with atomic_directory(target) as staging:
            train_tokenizer(texts, preset.model.vocab_size).save_pretrained(staging)
    return target


def model_dir(records: list[QARecord], role: str, tokenizer_dir: Path, preset: TofuPreset) -> Path:
    """Where the model of `role` ("full", "retain99", …) trained on `records` is cached."""
    identity = {"data": fingerprint(records), "preset": asdict(preset.model), "tokenizer": tokenizer_dir.name,
                "recipe": RECIPE_VERSION}
    return cache_root() / "tofu" / f"{preset.name}-{role}-{content_digest(identity)}"


def build_tofu_model(records: list[QARecord], role: str, tokenizer_dir: Path, preset: TofuPreset) -> Path:
    """A model trained from scratch on `records` (cached, see `model_dir`).

    Its `train.json` records the examples, tokens per epoch, seconds, tokens per second and epoch losses."""
    from obliviate.models import load_tokenizer

    target = model_dir(records, role, tokenizer_dir, preset)
    if (target / TRAINING_FILE).is_file():
        return target
    tokenizer = load_tokenizer(tokenizer_dir)
    examples = [encode_qa(tokenizer, r.question, r.answer, use_chat_template=False) for r in records]
    tokens = sum(len(example.input_ids) for example in examples)
    model = build_model(preset.model, tokenizer)
    started = time.perf_counter()
    losses = train_from_scratch(model, tokenizer, examples, preset.model)
    seconds = time.perf_counter() - started
    with atomic_directory(target) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        atomic_write_json(staging / TRAINING_FILE, {
            "role": role, "preset": asdict(preset.model), "examples": len(examples), "tokens_per_epoch": tokens,
            "parameters": sum(p.numel() for p in model.parameters()), "train_seconds": round(seconds, 1),
            "tokens_per_second": round(tokens * preset.model.epochs / seconds),
            "epoch_losses": [round(loss, 4) for loss in losses],
        })
    return target


def build_full_and_retain(data: TofuData, preset: TofuPreset) -> tuple[Path, Path]:
    """The full and retain models (cached). Both missing on a multi-core CPU: they train side by side,
    each process on half the cores, which for models this small is ~10% faster than one after the other."""
    tokenizer_dir = build_tokenizer(data, preset)
    jobs = [(data.general + data.full, "full", tokenizer_dir, preset),
            (data.general + data.retain, data.retain_name, tokenizer_dir, preset)]
    missing = [job for job in jobs if not (model_dir(*job) / TRAINING_FILE).is_file()]
    threads = torch.get_num_threads() // 2
    if len(missing) == 2 and threads >= 1 and not torch.cuda.is_available():
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=torch.set_num_threads,
                                 initargs=(threads,)) as pool:
            list(pool.map(build_tofu_model, *zip(*missing)))
    full, retain = (build_tofu_model(*job) for job in jobs)
    return full, retain


def finetuned_model_dir(base: str, records: list[QARecord], role: str, overrides: list[str]) -> Path:
    """Where `base` fine-tuned on `records` for `role` is cached."""
    identity = {"base": base, "data": fingerprint(records), "recipe": finetune_recipe().read_text(),
                "overrides": overrides, "recipe_version": RECIPE_VERSION}
    name = "".join(char if char.isalnum() or char in "-_." else "_" for char in Path(base).name)
    return cache_root() / "tofu" / f"{name}-{role}-{content_digest(identity)}"


def finetune_recipe() -> Path:
    return recipe_file(PRETRAINED_RECIPES, "finetune", required=True)


def accelerator_overrides() -> list[str]:
    """bf16 mixed precision where a GPU supports it, as TOFU and open-unlearning train; fp32 on a CPU."""
    return ["mixed_precision=bf16"] if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else []


def finetune_tofu_model(base: str, records: list[QARecord], role: str, overrides: list[str]) -> Path:
    """`base` fine-tuned on `records` with TOFU's protocol (cached, see `finetuned_model_dir`); its `train.json`
    records the examples, parameters, seconds and tokens per second as `build_tofu_model`'s does."""
    from obliviate.unlearn import unlearn

    overrides = accelerator_overrides() + overrides  # a bf16 model on a GPU is cached apart from an fp32 one
    target = finetuned_model_dir(base, records, role, overrides)
    if (target / TRAINING_FILE).is_file():
        return target
    if not (target / "run.json").is_file():
        unlearn(base, "finetune", records, None, target, config=finetune_recipe(), overrides=overrides)
    run = json.loads((target / "run.json").read_text())
    config = yaml.safe_load((target / "config.yaml").read_text())
    atomic_write_json(target / TRAINING_FILE, {
        "role": role, "base_model": base, "examples": len(records), "epochs": config["epochs"],
        "parameters": run.get("trainable_parameters"), "train_seconds": round(run["wall_seconds"], 1),
        "tokens_per_second": round(run["tokens_per_second"]) if run.get("tokens_per_second") else None,
    })
    return target


def training_record(directory: Path | str) -> dict:
    """What training the model recorded (train.json), or {} for a checkpoint the bench did not train."""
    path = Path(directory) / TRAINING_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
