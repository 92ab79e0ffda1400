"""MemFlex (KnowUnDo): locate the unlearn knowledge in LoRA matrices, then unlearn only there.

The method's prepare step localises (localize.py, beside this file) on a copy of the model with a fresh
LoRA adapter, before training; the run then puts its adapter on the located modules only, and
keeps the localisation in `located.json` (its located fraction in run.json):

    unlearn(model_dir, "memflex", forget, retain, out)             # → out/located.json
    unlearn(model_dir, "memflex", forget, retain, out2, overrides=[f"located={out}/located.json"])  # reuse it

`iterative=true` localises at every step instead, on that step's forget / retain batch, and
trains only the matrices located there.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models import LoraSettings, add_lora
from obliviate.unlearn.batches import Records
from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.methods.memflex.localize import Localization, LocalizeSettings, locate, localize, lora_matrices
from obliviate.unlearn.methods.ga import gradient_ascent
from obliviate.unlearn.methods.npo import npo
from obliviate.unlearn.registry import LossTerms, Preparation, RunInputs, Step, register_method

LOCATED_FILE = "located.json"


@dataclass
class MemFlexConfig(UnlearnConfig):
    gamma: float = 0.4
    alpha: float = 2.0
    retain_loss: RetainLoss = "gd"
    lr: float = 3e-4
    epochs: float = 2.0
    scheduler: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_ratio: float = 0.03
    use_lora: bool = True
    located: str | None = None  # a localisation JSON (Localization.save) to reuse; None: localise before training
    iterative: bool = False  # localise at every step instead
    localize: LocalizeSettings = field(default_factory=LocalizeSettings)


@dataclass
class MemFlexNPOConfig(MemFlexConfig):
    gamma: float = 1.0
    beta: float = 0.1


def locate_for(model: nn.Module, tokenizer, forget: Records, retain: Records, settings: LocalizeSettings,
               lora: LoraSettings | None = None, max_length: int = 512) -> Localization:
    """Localise on a copy of `model` wrapped with a fresh LoRA adapter (`lora`; default r=8, α=16, every linear
    layer); `model` and the global random state are left as they were."""
    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)  # the adapter's random A init
        return localize(add_lora(copy.deepcopy(model), lora), tokenizer, forget, retain, settings, max_length)


def prepare_memflex(inputs: RunInputs, cfg: MemFlexConfig) -> Preparation:
    """Train the located modules: those of `cfg.located`, or localise now; iterative: adapters everywhere."""
    if cfg.iterative:
        return Preparation()
    if cfg.located is not None:
        found = Localization.load(cfg.located)
    else:
        found = locate_for(inputs.model, inputs.tokenizer, inputs.forget, inputs.retain, cfg.localize, cfg.lora,
                           cfg.max_length)
    if not found.modules:
        raise ObliviateError(f"memflex: no LoRA matrix was located ({cfg.located or 'localised before training'}); "
                             "lower localize.min_magnitude or raise localize.max_cosine")
    report = {"located": LOCATED_FILE, "located_fraction": found.located_fraction,
              "located_modules": len(found.modules)}
    return Preparation(files={LOCATED_FILE: asdict(found)}, report=report, trainable_modules=found.modules)


def train_only_located(step: Step, cfg: MemFlexConfig) -> None:
    """Re-locate on this step's batches and let only the located LoRA matrices receive gradients."""
    matrices = lora_matrices(step.model)
    for p in matrices.values():
        p.requires_grad_(True)
    # Seeded by the batch itself: the same step re-locates the same way, also after --resume.
    generator = torch.Generator().manual_seed(cfg.localize.seed + int(step.forget.input_ids.sum()))
    found = locate(step.model, [step.forget], [step.retain], cfg.localize, generator)
    for name, p in matrices.items():
        p.requires_grad_(name in found.located)


def memflex_loss(forget_and_retain):
    def loss(step: Step, cfg: MemFlexConfig) -> LossTerms:
        if cfg.iterative:
            train_only_located(step, cfg)
        yield from forget_and_retain(step, cfg)
    return loss


register_method("memflex", MemFlexConfig, "MemFlex: -γ·CE(forget) + α·CE(retain) on the located LoRA matrices only",
                {"retain"}, prepare=prepare_memflex)(memflex_loss(gradient_ascent))
register_method("memflex_npo", MemFlexNPOConfig, "MemFlex with NPO on the forget answers (+ GD or KL retain)",
                {"retain", "reference_logprobs"}, prepare=prepare_memflex)(memflex_loss(npo))
