"""ME+GD: maximise the entropy of the predictive distribution on forget answers, NLL on retain answers."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.unlearn.config import RetainLoss, UnlearnConfig
from obliviate.unlearn.losses import answer_tokens, retain_term
from obliviate.unlearn.registry import LossTerms, Step, register_method


@dataclass
class MEConfig(UnlearnConfig):
    retain_loss: RetainLoss = "gd"


@register_method("me_gd", MEConfig, "maximum entropy on forget answers + α·CE(retain)")
def maximum_entropy(step: Step, cfg: MEConfig) -> LossTerms:
    tokens = answer_tokens(step.logits(step.forget), step.forget.labels)
    logprobs = tokens.logprobs()
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    yield "forget", -cfg.gamma * tokens.per_sequence(entropy).mean()
    yield from retain_term(step, cfg)
