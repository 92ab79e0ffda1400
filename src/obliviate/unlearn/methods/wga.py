"""Weighted gradient ascent: ascent on each forget token, weighted by its (detached) probability^β."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.losses import answer_tokens, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class WGAConfig(UnlearnConfig):
    beta: float = 1.0
    retain_loss: RetainLoss = "gd"


@register_method("wga", WGAConfig, "weighted GA: -mean(w·ℓ), w = exp(-βℓ) detached, ℓ the token NLL; + α·CE(retain)")
def wga(step: Step, cfg: WGAConfig) -> LossTerms:
    tokens = answer_tokens(step.logits(step.forget), step.forget.labels)
    nll = tokens.nll()
    weights = torch.exp(-cfg.beta * nll).detach()
    yield "forget", -cfg.gamma * tokens.per_sequence(weights * nll).mean()
    yield from retain_term(step, cfg)
