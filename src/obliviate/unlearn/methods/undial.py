"""UNDIAL: self-distillation towards the starting model's distribution with the answer token pushed down."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.losses import answer_tokens, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class UNDIALConfig(UnlearnConfig):
    beta: float = 10.0


@register_method("undial", UNDIALConfig, "UNDIAL: CE of θ against softmax(z_ref - β·onehot(y)) on forget answers",
                 {"reference_model"})
def undial(step: Step, cfg: UNDIALConfig) -> LossTerms:
    reference = answer_tokens(step.reference_logits(step.forget), step.forget.labels)
    rows = torch.arange(len(reference.labels), device=reference.labels.device)
    reference.values[rows, reference.labels] -= cfg.beta
    target = torch.softmax(reference.values, dim=-1)
    tokens = answer_tokens(step.logits(step.forget), step.forget.labels)
    cross_entropy = -(target * tokens.logprobs()).sum(-1)
    yield "forget", cfg.gamma * tokens.per_sequence(cross_entropy).mean()
    yield from retain_term(step, cfg)
