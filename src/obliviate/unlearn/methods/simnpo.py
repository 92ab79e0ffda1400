"""SimNPO: NPO with a length-normalised log-probability and no reference model."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.losses import mean_nll, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class SimNPOConfig(UnlearnConfig):
    beta: float = 4.5
    delta: float = 0.0
    gamma: float = 0.125
    retain_loss: RetainLoss = "gd"


@register_method("simnpo", SimNPOConfig, "SimNPO: -(2/β)·logσ(β·NLL_θ/|y| - δ) on forget answers; + α·CE(retain)")
def simnpo(step: Step, cfg: SimNPOConfig) -> LossTerms:
    normalised_nll = mean_nll(step.logits(step.forget), step.forget.labels)
    yield "forget", cfg.gamma * -(2 / cfg.beta) * F.logsigmoid(cfg.beta * normalised_nll - cfg.delta).mean()
    yield from retain_term(step, cfg)
