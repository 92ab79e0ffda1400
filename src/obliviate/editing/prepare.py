"""Setting up an AlphaEdit editor for a model: its edit layers, null-space projectors and context prefixes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from obliviate.editing.alphaedit import AlphaEditor, check_edit_layers, default_edit_layers
from obliviate.editing.null_space import cached_second_moments, projector, sample_sequences
from obliviate.editing.settings import AlphaEditSettings
from obliviate.models import model_fingerprint, num_layers, unwrap


def prepare_editor(model: nn.Module, tokenizer, settings: AlphaEditSettings,
                   preserved: list[list[int]] | None = None, cache: bool = True) -> AlphaEditor:
    """An editor for `model`, with P computed from the keys of `preserved` token sequences (None: text the
    model samples itself, `settings.null_space.tokens` of it).

    With `cache`, the key statistics are cached on disk under the fingerprint of the directory the
    model was loaded from, so `model` must be unchanged since it was loaded (a model that exists
    only in memory is never cached).
    """
    layers = check_edit_layers(model, settings.layers or default_edit_layers(num_layers(model)))
    was_training = model.training
    model.eval()
    try:
        budget = settings.null_space.tokens

        def sequences() -> list[list[int]]:
            if preserved is None:
                return sample_sequences(model, tokenizer, budget, seed=settings.seed)
            return _first_tokens(preserved, budget)

        source = {"sampled": budget, "seed": settings.seed} if preserved is None else \
            {"sequences": _digest(_first_tokens(preserved, budget))}
        key = _cache_key(model, source) if cache else None
        moments = cached_second_moments(model, layers, sequences, tokenizer.pad_token_id, key)
        projectors = {layer: projector(moments[layer], settings.null_space.threshold) for layer in layers}
        contexts = context_prefixes(model, tokenizer, settings.contexts, settings.context_tokens, settings.seed)
    finally:
        model.train(was_training)
    return AlphaEditor(model, tokenizer, layers, projectors, contexts, settings)


@torch.no_grad()
def context_prefixes(model: nn.Module, tokenizer, count: int, tokens: int, seed: int) -> list[str]:
    """"" and `count` short texts the model samples from its start token (MEMIT's context templates)."""
    if count == 0:
        return [""]
    samples = sample_sequences(model, tokenizer, count * tokens, length=tokens + 1, batch_size=count, seed=seed)
    texts = [" ".join(tokenizer.decode(ids, skip_special_tokens=True).split()) for ids in samples[:count]]
    return ["", *[text for text in texts if text]]


def _first_tokens(sequences: list[list[int]], budget: int) -> list[list[int]]:
    """The leading sequences holding `budget` tokens (the last one may push past it)."""
    kept, total = [], 0
    for ids in sequences:
        if total >= budget:
            break
        kept.append(ids)
        total += len(ids)
    return kept


def _digest(sequences: list[list[int]]) -> str:
    return hashlib.sha256(json.dumps(sequences).encode()).hexdigest()[:16]


def _cache_key(model: nn.Module, source: dict) -> dict | None:
    """The model directory's fingerprint and the text source; None for a model not loaded from a directory."""
    directory = getattr(unwrap(model), "name_or_path", "")
    if not directory or not Path(directory).is_dir():
        return None
    return {"model": model_fingerprint(directory), "source": source}
