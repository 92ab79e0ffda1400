"""Negative preference optimisation: the forget answer as a rejected response, against the starting model."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.losses import retain_term, sequence_logprob
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class NPOConfig(UnlearnConfig):
    beta: float = 0.1


@dataclass
class NPOGDConfig(NPOConfig):
    retain_loss: RetainLoss = "gd"


@dataclass
class NPOKLConfig(NPOConfig):
    retain_loss: RetainLoss = "kl"


NEEDS = {"reference_logprobs"}


@register_method("npo", NPOConfig, "NPO: -(2/β)·logσ(-β·(log p_θ - log p_ref)) on forget answers", NEEDS)
@register_method("npo_gd", NPOGDConfig, "NPO + α·CE(retain)", NEEDS)
@register_method("npo_kl", NPOKLConfig, "NPO + α·KL(p_ref || p_θ) on retain answers", NEEDS)
def npo(step: Step, cfg: NPOConfig) -> LossTerms:
    delta = sequence_logprob(step.logits(step.forget), step.forget.labels) - step.forget.reference_logprobs
    yield "forget", cfg.gamma * -(2 / cfg.beta) * F.logsigmoid(-cfg.beta * delta).mean()
    yield from retain_term(step, cfg)
