"""DPO towards an alternative answer and away from the forget answer (idkpo: the alternative is a refusal)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F

from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.losses import retain_term, sequence_logprob
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class DPOConfig(UnlearnConfig):
    beta: float = 0.1
    alternative: Literal["refusal", "perturbed"] = "perturbed"  # perturbed: one of the record's wrong answers


@dataclass
class IdkPOConfig(DPOConfig):
    alternative: Literal["refusal", "perturbed"] = "refusal"


NEEDS = {"alternatives", "reference_logprobs"}


@register_method("dpo", DPOConfig, "DPO: prefer a wrong (perturbed) answer to the forget one (+ retain_loss)",
                 NEEDS)
@register_method("idkpo", IdkPOConfig, "DPO: prefer a refusal (\"I don't know\") to the forget answer (+ retain_loss)",
                 NEEDS)
def dpo(step: Step, cfg: DPOConfig) -> LossTerms:
    forget_logits, alternative_logits = step.joint_logits(step.forget, step.alternative)
    forget_delta = sequence_logprob(forget_logits, step.forget.labels) - step.forget.reference_logprobs
    alternative_delta = (sequence_logprob(alternative_logits, step.alternative.labels)
                         - step.alternative.reference_logprobs)
    yield "forget", cfg.gamma * -(2 / cfg.beta) * F.logsigmoid(cfg.beta * (alternative_delta - forget_delta)).mean()
    yield from retain_term(step, cfg)
