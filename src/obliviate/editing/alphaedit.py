"""AlphaEdit (a MEMIT successor): closed-form edits of the MLP down projections, confined to the null space
of the preserved knowledge's keys.

For a set of requests, with K the (d_in, n) keys at their key tokens (the subjects' last tokens by
default) and Z the (d, n) target values at the last edit layer, each edit layer i of the L in turn gets

    R  = (Z − H) / (L − i)                                 H: the last edit layer's output now
    ΔW = R·Kᵀ·P·(K·Kᵀ·P + C_prev·P + λI)⁻¹

so ΔW·P = ΔW (it never moves W·k0 for a preserved key k0), and C_prev — the K·Kᵀ of every earlier
edit — keeps sequential edits from undoing each other. Weights are handled as (out, in) through
`linear_weight_as_out_in` / `apply_weight_delta`, so GPT-2's Conv1D and nn.Linear edit alike.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from obliviate.editing.activations import hidden_at, keys_at
from obliviate.editing.null_space import null_space_dimension
from obliviate.editing.requests import EditRequest, context_batch, prompt_batch, question_prompt, target_ids
from obliviate.editing.settings import AlphaEditSettings
from obliviate.editing.values import target_value
from obliviate.errors import ObliviateError
from obliviate.models import apply_weight_delta, linear_weight_as_out_in, mlp_down_proj, num_layers

logger = logging.getLogger(__name__)


def default_edit_layers(layer_count: int) -> list[int]:
    """Consecutive early-middle layers: L/8 … L/4 (4–8 of 32, as in AlphaEdit and UniErase)."""
    return list(range(layer_count // 8, layer_count // 4 + 1))


def check_edit_layers(model: nn.Module, layers: list[int]) -> list[int]:
    count = num_layers(model)
    if not layers or any(not 0 <= layer < count for layer in layers):
        raise ObliviateError(f"edit layers {layers} must be a non-empty list within 0..{count - 1}")
    return sorted(set(layers))


@dataclass
class EditReport:
    requests: int
    seconds: float
    update_norms: dict[int, float]  # ‖ΔW‖ per layer
    reached: float  # share of the requests whose question is now answered with the target's first token


class AlphaEditor:
    """Edits one model, request batch after request batch, remembering the keys it has edited (C_prev).

    `projectors`: the null-space projector P of every edit layer (see `null_space.projector`);
    `context_groups`: prefixes in groups, the first [""] (the plain prompt); a key is the mean over the groups of
    each group's mean key (AlphaEdit's `compute_ks`: the plain prompt weighs 1/2), and the value is optimised in
    every prefix alike (`compute_z`).
    """

    def __init__(self, model: nn.Module, tokenizer, layers: list[int], projectors: dict[int, torch.Tensor],
                 context_groups: list[list[str]], settings: AlphaEditSettings,
                 edited_keys: dict[int, torch.Tensor] | None = None):
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.layers = check_edit_layers(model, layers)
        if not context_groups or context_groups[0] != [""] or not all(context_groups):
            raise ObliviateError(f"context groups must start with [''] (the plain prompt) and none be empty: "
                                 f"{context_groups}")
        self.context_groups = context_groups
        self.contexts = [prefix for group in context_groups for prefix in group]
        self.projectors = {layer: projectors[layer].float() for layer in self.layers}
        for layer in self.layers:
            if null_space_dimension(self.projectors[layer]) == 0:
                logger.warning("layer %d has an empty null space: it cannot be edited (raise the threshold)",
                               layer)
        size = self.projectors[self.layers[0]].shape[0]
        self.edited_keys = edited_keys or {layer: torch.zeros(size, size) for layer in self.layers}

    def edit(self, requests: list[EditRequest]) -> EditReport:
        started = time.perf_counter()
        with _frozen(self.model):
            last = self.layers[-1]
            values = torch.cat([target_value(self.model, self.tokenizer, request, self.contexts, last,
                                             self.settings.value, self.settings.key_token)
                                for request in requests]).T
            norms = {}
            for position, layer in enumerate(self.layers):
                keys = self._keys(requests, layer)
                gap = values - self._hidden(requests, last)
                residual = gap / (len(self.layers) - position)
                norms[layer] = self._update(layer, keys, residual)
            for layer in self.layers:
                keys = self._keys(requests, layer)
                self.edited_keys[layer] += (keys @ keys.T).cpu()
            reached = self.reached(requests)
        return EditReport(len(requests), time.perf_counter() - started, norms, reached)

    def _keys(self, requests: list[EditRequest], layer: int) -> torch.Tensor:
        """(d_in, n) the keys of every request's key tokens: the mean over the context groups of the group means."""
        keys = []
        for request in requests:
            batch = context_batch(self.tokenizer, request, self.contexts, self.settings.key_token, self._device)
            per_context = keys_at(self.model, batch, layer).unflatten(0, (len(self.contexts), -1))
            groups = per_context.split([len(group) for group in self.context_groups])
            keys.append(torch.stack([group.mean(0) for group in groups]).mean(0))
        return torch.cat(keys).T

    def _hidden(self, requests: list[EditRequest], layer: int) -> torch.Tensor:
        """(d, n) the output of `layer` at the plain questions' key tokens."""
        prompts = [question_prompt(self.tokenizer, r, key_token=self.settings.key_token) for r in requests]
        return hidden_at(self.model, prompt_batch(prompts, self.tokenizer.pad_token_id, self._device), layer).T

    @torch.no_grad()
    def reached(self, requests: list[EditRequest]) -> float:
        """The share of `requests` whose question the model now answers with the target's first token (greedy)."""
        batch = prompt_batch([question_prompt(self.tokenizer, r) for r in requests], self.tokenizer.pad_token_id,
                             self._device)
        logits = self.model(**batch.inputs).logits
        predicted = logits[torch.arange(len(requests), device=logits.device), batch.last_positions].argmax(-1)
        targets = torch.tensor([target_ids(self.tokenizer, r.target)[0] for r in requests], device=logits.device)
        return float((predicted == targets).float().mean())

    def _update(self, layer: int, keys: torch.Tensor, residual: torch.Tensor) -> float:
        """Add ΔW = R·Kᵀ·P·((K·Kᵀ + C_prev)·P + λI)⁻¹ to `layer`'s down projection; returns ‖ΔW‖."""
        module = mlp_down_proj(self.model, layer)
        device = linear_weight_as_out_in(module).device
        keys, residual = keys.to(device, torch.float64), residual.to(device, torch.float64)
        projection = self.projectors[layer].to(device, torch.float64)
        covariance = keys @ keys.T + self.edited_keys[layer].to(device, torch.float64)
        identity = torch.eye(covariance.shape[0], device=device, dtype=torch.float64)
        # ΔWᵀ = (P·(KKᵀ + C_prev) + λI)⁻¹·P·K·Rᵀ, the transpose of the formula above (P is symmetric).
        delta = torch.linalg.solve(projection @ covariance + self.settings.l2 * identity,
                                   projection @ keys @ residual.T).T
        apply_weight_delta(module, delta)
        return float(delta.norm())

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """No parameter collects gradients (only δ does) and dropout is off, then the previous state returns."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)
        model.train(was_training)
