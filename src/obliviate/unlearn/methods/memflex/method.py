"""MemFlex (KnowUnDo): locate the unlearn knowledge in the LoRA adapter that learned it, then unlearn only there.

The published pipeline (zjunlp/KnowUnDo), in the method's prepare step:
1. the adapter that learned the data: the run's `adapter=DIR` (e.g. a finetune run saved with --save-adapter),
   or, when the run has none, one learned now on the forget and retain data together, with KnowUnDo's
   fine-tuning settings (`learn`);
2. localisation on that adapter (localize.py, beside this file), or the one of `located=FILE`;
3. training exactly the located A / B matrices of that adapter; the rest of it and the model stay as they are.

    unlearn(model_dir, "memflex", forget, retain, out, overrides=[f"adapter={adapter_dir}"])  # → out/located.json
    unlearn(model_dir, "memflex", forget, retain, out2, overrides=[f"adapter={adapter_dir}", f"located={out}/located.json"])

`iterative=true` localises at every step instead, on that step's forget / retain batch, and trains only the
matrices located there.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models import LoraSettings, is_peft_model, load_adapter
from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.models import lora_matrices
from obliviate.unlearn.methods.memflex.localize import Localization, LocalizeSettings, locate, localize
from obliviate.unlearn.methods.ga import gradient_ascent
from obliviate.unlearn.methods.npo import npo
from obliviate.unlearn.registry import LossTerms, Preparation, RunInputs, Step, register_method

LOCATED_FILE = "located.json"


@dataclass
class LearnSettings:
    """KnowUnDo's fine-tuning step (pretrain/config/finetune_lora.yaml, pretrain.py): LoRA r=8, α=16, dropout 0.1
    on every linear layer, AdamW lr 1e-4, weight decay 1e-4, batch 32, 10 epochs, one epoch of warm-up then
    linear decay, on the forget and retain data together."""

    lr: float = 1e-4
    epochs: float = 10.0
    batch_size: int = 32
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.1
    lora: LoraSettings = field(default_factory=lambda: LoraSettings(r=8, alpha=16, dropout=0.1))


@dataclass
class MemFlexConfig(UnlearnConfig):
    gamma: float = 0.4
    alpha: float = 2.0
    retain_loss: RetainLoss = "gd"
    lr: float = 3e-4
    epochs: float = 2.0
    scheduler: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_ratio: float = 0.03
    located: str | None = None  # a localisation JSON (Localization.save) of the same adapter to reuse
    iterative: bool = False  # localise at every step instead
    localize: LocalizeSettings = field(default_factory=LocalizeSettings)
    learn: LearnSettings = field(default_factory=LearnSettings)  # used when the run has no adapter=


@dataclass
class MemFlexNPOConfig(MemFlexConfig):
    gamma: float = 1.0
    beta: float = 0.1


def learn_adapter(inputs: RunInputs, cfg: MemFlexConfig) -> tuple[nn.Module, dict]:
    """KnowUnDo's first step: a LoRA adapter trained on the forget and retain data, put on the loaded model."""
    from obliviate.unlearn.run import unlearn

    learn = cfg.learn
    settings = UnlearnConfig(use_lora=True, lora=learn.lora, lr=learn.lr, epochs=learn.epochs,
                             batch_size=learn.batch_size, weight_decay=learn.weight_decay, scheduler="linear",
                             warmup_ratio=learn.warmup_ratio, max_length=cfg.max_length, dtype=cfg.dtype,
                             seed=cfg.seed, checkpoint_every=0)
    with tempfile.TemporaryDirectory(prefix="memflex-adapter-") as scratch:
        learned = unlearn(inputs.source, "finetune", inputs.forget + (inputs.retain or []), None,
                          Path(scratch) / "adapter", settings, save_adapter=True)
        run = json.loads((learned / "run.json").read_text(encoding="utf-8"))
        model = load_adapter(inputs.model, learned)
    return model, {"adapter": f"learned before localising: {run['steps']} steps, {run['train_seconds']} s"}


def prepare_memflex(inputs: RunInputs, cfg: MemFlexConfig) -> Preparation:
    """The adapter that learned the data (the run's, or learned now), and its located matrices to train."""
    model, report = inputs.model, {"adapter": cfg.adapter}
    if not is_peft_model(model):
        model, report = learn_adapter(inputs, cfg)
    if cfg.iterative:
        return Preparation(model=model, report=report)
    if cfg.located is not None:
        found = Localization.load(cfg.located)
    else:
        found = localize(model, inputs.tokenizer, inputs.forget, inputs.retain, cfg.localize, cfg.max_length)
    if not found.located:
        raise ObliviateError(f"memflex: no LoRA matrix was located ({cfg.located or 'localised before training'}); "
                             "lower localize.min_magnitude or raise localize.max_cosine")
    unknown = sorted(set(found.located) - set(lora_matrices(model)))
    if unknown:
        raise ObliviateError(f"memflex: located={cfg.located} names matrices this adapter lacks, e.g. {unknown[0]}: "
                             "it was localised on another adapter")
    report |= {"located": LOCATED_FILE, "located_fraction": found.located_fraction,
               "located_matrices": len(found.located), "located_modules": len(found.modules)}
    return Preparation(model=model, files={LOCATED_FILE: asdict(found)}, report=report,
                       trainable_parameters=found.located)


def train_only_located(step: Step, cfg: MemFlexConfig) -> None:
    """Re-locate on this step's batches and let only the located LoRA matrices receive gradients."""
    matrices = lora_matrices(step.model)
    for p in matrices.values():
        p.requires_grad_(True)
    # Seeded by the batch itself: the same step re-locates the same way, also after --resume.
    generator = torch.Generator().manual_seed(cfg.localize.seed + int(step.forget.input_ids.sum()))
    found = locate(step.model, [step.forget], [step.retain], cfg.localize, generator, step.pad_id)
    for name, p in matrices.items():
        p.requires_grad_(name in found.located)


def memflex_loss(forget_and_retain):
    def loss(step: Step, cfg: MemFlexConfig) -> LossTerms:
        if cfg.iterative:
            train_only_located(step, cfg)
        yield from forget_and_retain(step, cfg)
    return loss


register_method("memflex", MemFlexConfig, "MemFlex: -γ·CE(forget) + α·CE(retain) on the located matrices of the "
                "LoRA adapter that learned the data", {"retain"}, prepare=prepare_memflex)(memflex_loss(gradient_ascent))
register_method("memflex_npo", MemFlexNPOConfig, "MemFlex with NPO on the forget answers (+ GD or KL retain)",
                {"retain", "reference_logprobs"}, prepare=prepare_memflex)(memflex_loss(npo))
