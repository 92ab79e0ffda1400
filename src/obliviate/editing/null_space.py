"""AlphaEdit's null-space projector: updates that leave the keys of preserved knowledge unchanged.

For each edit layer, K0·K0ᵀ/n (the second moment of the down projection's input over general
text) is eigendecomposed; P projects onto the eigenvectors whose eigenvalue lies below a
threshold. An update ΔW = ΔW·P then barely moves W·k0 for any preserved key k0.

The second moment is the expensive part (a forward pass over ~100k tokens); it is cached on disk
per model, layer and text source (see `cached_second_moments`), and P is derived from it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from obliviate.editing.activations import key_second_moment
from obliviate.io import cache_root, content_digest


def projector(second_moment: torch.Tensor, threshold: float) -> torch.Tensor:
    """(d, d) the orthogonal projector onto the eigenvectors of `second_moment` with eigenvalue < threshold."""
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment.double())
    null = eigenvectors[:, eigenvalues < threshold]
    return (null @ null.T).float()


def null_space_dimension(projection: torch.Tensor) -> int:
    return round(float(projection.trace()))


@torch.no_grad()
def sample_sequences(model: nn.Module, tokenizer, tokens: int, length: int = 128, batch_size: int = 32,
                     seed: int = 0) -> list[list[int]]:
    """Texts the model writes itself from its start token (sampled at temperature 1), `tokens` in total."""
    device = next(model.parameters()).device
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    sequences: list[list[int]] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        while sum(map(len, sequences)) < tokens:
            prompt = torch.full((batch_size, 1), start, dtype=torch.long, device=device)
            output = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                    top_k=0, top_p=1.0, temperature=1.0, max_new_tokens=length - 1,
                                    pad_token_id=tokenizer.pad_token_id)
            sequences += [_until_end(row.tolist(), tokenizer) for row in output]
    return sequences


def _until_end(ids: list[int], tokenizer) -> list[int]:
    """A sampled row up to and including its end-of-sequence token (generate pads after it)."""
    eos = tokenizer.eos_token_id
    return ids[:ids.index(eos, 1) + 1] if eos is not None and eos in ids[1:] else ids


def cached_second_moments(model: nn.Module, layers: list[int], sequences: Callable[[], list[list[int]]],
                          pad_id: int, key: dict | None) -> dict[int, torch.Tensor]:
    """`key_second_moment` of the preserved `sequences()`, per layer, read from the disk cache when there.

    `key` identifies the model and the text source (e.g. the model fingerprint, the source, the
    token budget); None turns the cache off (a model that exists only in memory).
    """
    paths = {layer: _cache_path(key, layer) for layer in layers} if key is not None else {}
    cached = {layer: load_file(path)["second_moment"] for layer, path in paths.items() if path.is_file()}
    missing = [layer for layer in layers if layer not in cached]
    if missing:
        computed = key_second_moment(model, sequences(), missing, pad_id)
        for layer, path in paths.items():
            if layer in computed:
                _save_atomically(path, computed[layer])
        cached |= computed
    return {layer: cached[layer] for layer in layers}


def _cache_path(key: dict, layer: int) -> Path:
    return cache_root() / "key_second_moments" / f"{content_digest(key, 16)}-layer{layer}.safetensors"


def _save_atomically(path: Path, second_moment: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({"second_moment": second_moment.contiguous().cpu()}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
