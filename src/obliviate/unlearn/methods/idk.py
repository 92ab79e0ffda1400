"""IDK fine-tuning: train the forget prompts to be answered with a refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.losses import mean_nll, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class IDKConfig(UnlearnConfig):
    alternative: Literal["refusal", "perturbed"] = "refusal"
    retain_loss: RetainLoss = "gd"


@register_method("idk", IDKConfig, "CE(forget prompt → refusal) + α·CE(retain)", {"alternatives"})
def idk(step: Step, cfg: IDKConfig) -> LossTerms:
    yield "forget", cfg.gamma * mean_nll(step.logits(step.alternative), step.alternative.labels).mean()
    yield from retain_term(step, cfg)
