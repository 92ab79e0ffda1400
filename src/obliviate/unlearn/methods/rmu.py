"""RMU: push the forget answers' hidden states at one layer towards a fixed random direction,
keep the retain answers' hidden states where the starting model has them; only the MLP output
matrices of layers layer-2..layer are trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models import mlp_down_proj, module_name, num_layers
from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.losses import answer_tokens
from obliviate.unlearn.registry import LossTerms, Preparation, RunInputs, Step, register_method


@dataclass
class RMUConfig(UnlearnConfig):
    layer: int = 7  # WMDP setting for 32-layer 7B models
    steering_coef: float = 6.5
    alpha: float = 1200.0
    lr: float = 5e-5
    retain_loss: Literal["activations"] = "activations"


def trained_modules(model: nn.Module, cfg: RMUConfig) -> list[str]:
    layers = num_layers(model)
    if not 0 <= cfg.layer < layers:
        raise ObliviateError(f"rmu: layer {cfg.layer} does not exist, the model has {layers} decoder layers "
                             f"(--set layer=0..{layers - 1})")
    return [module_name(model, mlp_down_proj(model, i)) for i in range(max(0, cfg.layer - 2), cfg.layer + 1)]


def train_mlp_outputs(inputs: RunInputs, cfg: RMUConfig) -> Preparation:
    return Preparation(trainable_modules=trained_modules(inputs.model, cfg))


def random_direction(size: int, seed: int, device) -> torch.Tensor:
    """The fixed random unit vector u: the same for every step of a run with this seed."""
    vector = torch.rand(size, generator=torch.Generator().manual_seed(seed))
    return (vector / vector.norm()).to(device)


def mean_squared_error(hidden: torch.Tensor, target: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over answer tokens (and hidden units), then over sequences, of (hidden - target)²."""
    tokens = answer_tokens(hidden, labels)
    targets = answer_tokens(target, labels).values if target.dim() == 3 else target
    return tokens.per_sequence((tokens.values - targets).square().mean(-1)).mean()


@register_method("rmu", RMUConfig, "RMU: MSE(h_θ(x_f), c·u) + α·MSE(h_θ(x_r), h_ref(x_r)) at one layer",
                 {"retain", "reference_model", "hidden_states"}, prepare=train_mlp_outputs)
def rmu(step: Step, cfg: RMUConfig) -> LossTerms:
    hidden = step.hidden(step.forget)
    control = cfg.steering_coef * random_direction(hidden.shape[-1], cfg.seed, hidden.device)
    yield "forget", cfg.gamma * mean_squared_error(hidden, control, step.forget.labels)
    reference = step.reference_hidden(step.retain)
    yield "retain", cfg.alpha * mean_squared_error(step.hidden(step.retain), reference, step.retain.labels)
