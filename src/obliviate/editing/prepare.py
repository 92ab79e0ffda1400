"""Setting up an AlphaEdit editor for a model: its edit layers, null-space projectors and context prefixes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from obliviate.editing.alphaedit import AlphaEditor, check_edit_layers, default_edit_layers
from obliviate.editing.general_text import SOURCE, general_sequences
from obliviate.editing.null_space import cached_second_moments, projector, sample_sequences
from obliviate.editing.settings import AlphaEditSettings
from obliviate.models import model_fingerprint, num_layers, unwrap


def prepare_editor(model: nn.Module, tokenizer, settings: AlphaEditSettings,
                   preserved: list[list[int]] | Literal["general", "sampled"] = "general",
                   cache: bool = True) -> AlphaEditor:
    """An editor for `model`, with P computed from the keys of the `preserved` token sequences, or of
    `settings.null_space.tokens` tokens of general text (`general_text`, the offline stand-in for AlphaEdit's
    Wikipedia) or of text the model samples itself ("sampled").

    With `cache`, the key statistics are cached on disk under the fingerprint of the directory the
    model was loaded from, so `model` must be unchanged since it was loaded (a model that exists
    only in memory is never cached).
    """
    layers = check_edit_layers(model, settings.layers or default_edit_layers(num_layers(model)))
    was_training = model.training
    model.eval()
    try:
        budget = settings.null_space.tokens
        # What identifies the text in the cache, and how to produce it (only on a cache miss).
        if preserved == "general":
            source, sequences = {SOURCE: budget}, lambda: general_sequences(tokenizer, budget)
        elif preserved == "sampled":
            source = {"sampled": budget, "seed": settings.seed}
            sequences = lambda: sample_sequences(model, tokenizer, budget, seed=settings.seed)
        else:
            given = _first_tokens(preserved, budget)
            source, sequences = {"sequences": _digest(given)}, lambda: given
        key = _cache_key(model, source) if cache else None
        moments = cached_second_moments(model, layers, sequences, tokenizer.pad_token_id, key)
        projectors = {layer: projector(moments[layer], settings.null_space.threshold) for layer in layers}
        contexts = context_templates(model, tokenizer, settings)
    finally:
        model.train(was_training)
    return AlphaEditor(model, tokenizer, layers, projectors, contexts, settings)


@torch.no_grad()
def context_templates(model: nn.Module, tokenizer, settings: AlphaEditSettings) -> list[list[str]]:
    """MEMIT's and AlphaEdit's context templates, as prefixes in groups: [[""], [one text per start word]]."""
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        sampled = [" ".join(tokenizer.decode(sampled_context(model, tokenizer, start, settings),
                                             skip_special_tokens=True).split())
                   for start in settings.context_starts]
    return [[""], *([sampled] if sampled else [])]


def sampled_context(model: nn.Module, tokenizer, start: str, settings: AlphaEditSettings) -> list[int]:
    """The tokens of `start` (with the BOS the tokenizer adds) and what the model samples after them, top-k,
    `settings.context_length` tokens in all (AlphaEdit's `generate_fast`)."""
    prompt = torch.tensor([tokenizer(start)["input_ids"]], device=next(model.parameters()).device)
    output = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                            top_k=settings.context_top_k, top_p=1.0, temperature=1.0,
                            max_length=max(settings.context_length, prompt.shape[1]),
                            pad_token_id=tokenizer.pad_token_id)
    return output[0].tolist()


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
