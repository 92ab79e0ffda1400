"""Gradient ascent on the forget answers, alone (ga) or with a retain term (graddiff, ga_kl)."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.losses import mean_nll, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class GradDiffConfig(UnlearnConfig):
    retain_loss: RetainLoss = "gd"


@dataclass
class GAKLConfig(UnlearnConfig):
    retain_loss: RetainLoss = "kl"


@register_method("ga", UnlearnConfig, "gradient ascent: -CE(forget); collapses quickly, the reference point")
@register_method("graddiff", GradDiffConfig, "gradient difference: -CE(forget) + α·CE(retain)")
@register_method("ga_kl", GAKLConfig, "gradient ascent + α·KL(p_ref || p_θ) on retain answers")
def gradient_ascent(step: Step, cfg: UnlearnConfig) -> LossTerms:
    yield "forget", -cfg.gamma * mean_nll(step.logits(step.forget), step.forget.labels).mean()
    yield from retain_term(step, cfg)
