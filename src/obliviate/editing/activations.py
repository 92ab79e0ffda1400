"""Reading and nudging activations: MLP keys (the input of the down projection) and decoder-layer outputs."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from obliviate.editing.requests import PromptBatch
from obliviate.models import decoder_layers, mlp_down_proj


def _hidden(output) -> torch.Tensor:
    """A decoder layer's hidden states (older transformers return a tuple that starts with them)."""
    return output[0] if isinstance(output, tuple) else output


def _with_hidden(output, hidden: torch.Tensor):
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


@contextlib.contextmanager
def _captured(module: nn.Module, what: str) -> Iterator[list[torch.Tensor]]:
    """Every forward pass's input ("input") or output ("output") of `module`, appended to the yielded list."""
    seen: list[torch.Tensor] = []

    def keep(_module, args, output):
        seen.append(args[0] if what == "input" else _hidden(output))

    handle = module.register_forward_hook(keep)
    try:
        yield seen
    finally:
        handle.remove()


@torch.no_grad()
def keys_at(model: nn.Module, batch: PromptBatch, layer: int) -> torch.Tensor:
    """(keys, d_in) the input of layer `layer`'s MLP down projection at the batch's key positions."""
    with _captured(mlp_down_proj(model, layer), "input") as seen:
        model(**batch.inputs)
    return seen[0][batch.key_rows, batch.key_positions].float()


@torch.no_grad()
def hidden_at(model: nn.Module, batch: PromptBatch, layer: int) -> torch.Tensor:
    """(keys, d) the output of decoder layer `layer` at the batch's key positions."""
    with _captured(decoder_layers(model)[layer], "output") as seen:
        model(**batch.inputs)
    return seen[0][batch.key_rows, batch.key_positions].float()


@contextlib.contextmanager
def added_at(model: nn.Module, layer: int, deltas: torch.Tensor, batch: PromptBatch) -> Iterator[None]:
    """Inside the block, decoder layer `layer` outputs `deltas[i]` more at the batch's key position i."""

    def add(_module, _args, output):
        hidden = _hidden(output).clone()
        hidden[batch.key_rows, batch.key_positions] += deltas.to(hidden.dtype)
        return _with_hidden(output, hidden)

    handle = decoder_layers(model)[layer].register_forward_hook(add)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def key_second_moment(model: nn.Module, sequences: list[list[int]], layers: list[int], pad_id: int,
                      batch_size: int = 16) -> dict[int, torch.Tensor]:
    """E[k kᵀ] over every token of `sequences`, per layer: the keys of the knowledge to preserve."""
    device = next(model.parameters()).device
    sums: dict[int, torch.Tensor] = {}
    count = 0
    modules = {layer: mlp_down_proj(model, layer) for layer in layers}
    for start in range(0, len(sequences), batch_size):
        chunk = sequences[start:start + batch_size]
        width = max(map(len, chunk))
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        for row, ids in enumerate(chunk):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = True
        with contextlib.ExitStack() as stack:
            seen = {layer: stack.enter_context(_captured(module, "input")) for layer, module in modules.items()}
            model(input_ids=input_ids.to(device), attention_mask=mask.long().to(device))
        for layer in layers:
            keys = seen[layer][0][mask.to(device)].float()
            sums[layer] = sums.get(layer, 0) + keys.T @ keys
        count += int(mask.sum())
    return {layer: total / count for layer, total in sums.items()}
