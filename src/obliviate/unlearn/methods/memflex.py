"""MemFlex (KnowUnDo): locate the unlearn knowledge in LoRA matrices, then unlearn only there.

Two steps (the engine has no data hook before choosing trainable parameters, so localisation
runs first and is passed by file; `memflex_unlearn` does both):

    found = locate_for(model_dir, forget, retain, LocalizeSettings())   # → located.json
    unlearn(model_dir, "memflex", forget, retain, out, overrides=[f"located={path}"])

`iterative=true` skips the file: every step re-locates on its own forget / retain batch and
trains only the matrices located there.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models import add_lora, load_model, load_tokenizer
from obliviate.unlearn.batches import Records
from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.data_spec import load_data
from obliviate.unlearn.localize import Localization, LocalizeSettings, locate, localize, lora_matrices
from obliviate.unlearn.methods.ga import gradient_ascent
from obliviate.unlearn.methods.npo import npo
from obliviate.unlearn.registry import LossTerms, Step, get_method, register_method
from obliviate.unlearn.run import resolve_config, unlearn

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
    located: str | None = None  # a localisation JSON (Localization.save); needed unless iterative
    iterative: bool = False
    localize: LocalizeSettings = field(default_factory=LocalizeSettings)


@dataclass
class MemFlexNPOConfig(MemFlexConfig):
    gamma: float = 1.0
    beta: float = 0.1


def located_modules(model: nn.Module, cfg: MemFlexConfig) -> list[str] | None:
    if cfg.iterative:
        return None  # adapters everywhere; each step picks its matrices
    if cfg.located is None:
        raise ObliviateError("memflex needs a localisation: --set located=FILE (written by "
                             "obliviate.unlearn.methods.memflex.locate_for), or --set iterative=true")
    found = Localization.load(cfg.located)
    if not found.modules:
        raise ObliviateError(f"{cfg.located}: no matrix was located; lower localize.min_magnitude "
                             "or raise localize.max_cosine")
    return found.modules


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
                {"retain"}, trainable_modules=located_modules)(memflex_loss(gradient_ascent))
register_method("memflex_npo", MemFlexNPOConfig, "MemFlex with NPO on the forget answers (+ GD or KL retain)",
                {"retain", "reference_logprobs"}, trainable_modules=located_modules)(memflex_loss(npo))


def locate_for(model_dir: str | Path, forget: Records, retain: Records,
               settings: LocalizeSettings | None = None, lora=None) -> Localization:
    """Localise on `model_dir` wrapped with a fresh LoRA adapter (r=8, α=16, all linear layers by default)."""
    settings = settings or LocalizeSettings()
    torch.manual_seed(settings.seed)  # the adapter's random A init
    model = add_lora(load_model(model_dir), lora)
    return localize(model, load_tokenizer(model_dir), forget, retain, settings)


def memflex_unlearn(model_dir: str | Path, forget: str | Records, retain: str | Records, out: str | Path,
                    overrides: list[str] | None = None, method: str = "memflex", config=None,
                    world: str | Path | None = None) -> Path:
    """Localise, then unlearn with `method` on the located modules; `out/located.json` keeps the localisation
    (and `<out>.located.json`, which the run's config.yaml names). `forget` / `retain`: records or data specs."""
    cfg = resolve_config(get_method(method), config, overrides)
    forget, retain = (load_data(d, world, model_dir) if isinstance(d, str) else d for d in (forget, retain))
    out = Path(out)
    located = out.with_name(out.name + "." + LOCATED_FILE)
    locate_for(model_dir, forget, retain, cfg.localize, cfg.lora).save(located)
    unlearn(model_dir, method, forget, retain, out, cfg, overrides=[f"located={located}"])
    shutil.copy(located, out / LOCATED_FILE)
    return out
