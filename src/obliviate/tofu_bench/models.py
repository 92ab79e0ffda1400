"""The TOFU benchmark's models: one BPE tokenizer, then the full and retain models, trained from scratch.

The tiny-model recipe of `obliviate.models.tiny` (tokenizer, Llama architecture, training loop)
applied to TOFU QA, with the loss on answer tokens only. The tokenizer learns retain90's text, so
it has never read a forget answer of any split. Builds are cached under the cache root by a hash
of the QA pairs trained on, the preset and `RECIPE_VERSION`.
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

from obliviate.tofu_bench.data import TofuData, fingerprint
from obliviate.data import QARecord
from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json, cache_root, content_digest
from obliviate.models.tiny import Preset, build_model, train_from_scratch, train_tokenizer
from obliviate.prompts import encode_qa

RECIPE_VERSION = 1
TRAINING_FILE = "train.json"


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


def training_record(directory: Path) -> dict:
    return json.loads((directory / TRAINING_FILE).read_text())
