"""Plain fine-tuning (NLL) on the given data: injects pseudo-entities, trains TOFU full / retain models."""

from __future__ import annotations

from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.losses import mean_nll, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@register_method("finetune", UnlearnConfig, "plain fine-tuning: CE on the given (--forget) data")
def finetune(step: Step, cfg: UnlearnConfig) -> LossTerms:
    yield "nll", cfg.gamma * mean_nll(step.logits(step.forget), step.forget.labels).mean()
    yield from retain_term(step, cfg)
