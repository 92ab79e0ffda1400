"""MemFlex localisation: which LoRA matrices carry the knowledge to unlearn, and not the knowledge to keep.

For the unlearn set and the retention set (a seeded sample of `retain_sample` examples) separately,
every example is repeated `repeats` times with about half of its answer tokens replaced by random
token ids, and the gradient of each LoRA A/B matrix is averaged over those examples (batch 1) → G_u,
G_r. A matrix is located when cos(G_u, G_r) < μ (specific to the unlearn knowledge) and mean|G_u| > σ
(it carries signal).

On a freshly initialised adapter B = 0, so every A gradient is exactly 0 and only B matrices can
be located (the paper first fine-tunes the adapter on all data). Training acts on modules: a
module is trained when one of its matrices is located (`Localization.modules`).

    found = localize(model, tokenizer, unlearn_records, retain_records, LocalizeSettings())
    found.save("located.json")
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.io import atomic_write_json
from obliviate.prompts import IGNORE_INDEX
from obliviate.unlearn.batches import Batch, Examples, Records, encode_records
from obliviate.unlearn.losses import mean_nll

LORA_MARKERS = (".lora_A.", ".lora_B.")


@dataclass
class LocalizeSettings:
    repeats: int = 3
    relabel_fraction: float = 0.5  # share of answer tokens replaced by random ids
    max_cosine: float = 0.92  # μ
    min_magnitude: float = 6e-4  # σ, on mean |G_u|
    # G_r from a seeded sample of at most this many retention examples (None: all): the mean settles
    # long before TOFU's 3,960 retain QA, which would cost 3 backward passes each.
    retain_sample: int | None = 400
    seed: int = 0


@dataclass
class Localization:
    located: list[str]  # LoRA matrix parameter names
    modules: list[str]  # base-model module names holding a located matrix (what `select_trainable` takes)
    located_fraction: float  # located LoRA parameters / all LoRA parameters
    settings: LocalizeSettings
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # per matrix: cosine, magnitude

    def save(self, path: str | Path) -> Path:
        atomic_write_json(path, asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Localization:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{**document, "settings": LocalizeSettings(**document["settings"])})


def lora_matrices(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if any(m in name for m in LORA_MARKERS)}


def base_module_name(parameter_name: str) -> str:
    """'base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight' → 'model.layers.0.mlp.up_proj'."""
    module = parameter_name.split(".lora_")[0]
    return module.removeprefix("base_model.model.")


def relabelled(batch: Batch, fraction: float, vocab_size: int, generator: torch.Generator) -> Batch:
    """`batch` with about `fraction` of its answer tokens' labels replaced by random token ids."""
    labels = batch.labels.clone()
    answer = labels != IGNORE_INDEX
    replace = answer & (torch.rand(labels.shape, generator=generator) < fraction).to(labels.device)
    random_ids = torch.randint(vocab_size, labels.shape, generator=generator).to(labels.device)
    labels[replace] = random_ids[replace]
    return dataclasses.replace(batch, labels=labels)


def relabelled_gradients(model: nn.Module, batches: Iterable[Batch], settings: LocalizeSettings,
                         generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The mean gradient of every LoRA matrix of CE on randomly relabelled answers, each batch `repeats` times."""
    matrices = lora_matrices(model)
    sums = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in matrices.items()}
    vocab_size = model.get_output_embeddings().weight.shape[0]
    count = 0
    for batch in batches:
        for _ in range(settings.repeats):
            noisy = relabelled(batch, settings.relabel_fraction, vocab_size, generator)
            loss = mean_nll(model(**noisy.inputs, use_cache=False).logits, noisy.labels).mean()
            for total, grad in zip(sums.values(), torch.autograd.grad(loss, list(matrices.values()))):
                total += grad.float()
            count += 1
    return {name: total / count for name, total in sums.items()}


def select_matrices(unlearn_grads: dict[str, torch.Tensor], retain_grads: dict[str, torch.Tensor],
                    settings: LocalizeSettings) -> tuple[list[str], dict[str, dict[str, float]]]:
    scores = {}
    for name, g_u in unlearn_grads.items():
        cosine = F.cosine_similarity(g_u.flatten(), retain_grads[name].flatten(), dim=0, eps=1e-12).item()
        scores[name] = {"cosine": cosine, "magnitude": g_u.abs().mean().item()}
    located = [name for name, s in scores.items()
               if s["cosine"] < settings.max_cosine and s["magnitude"] > settings.min_magnitude]
    return located, scores


def locate(model: nn.Module, unlearn: Iterable[Batch], retain: Iterable[Batch], settings: LocalizeSettings,
           generator: torch.Generator) -> Localization:
    """Locate on a LoRA-wrapped `model` (not changed: gradients go to autograd.grad, not .grad)."""
    located, scores = select_matrices(relabelled_gradients(model, unlearn, settings, generator),
                                      relabelled_gradients(model, retain, settings, generator), settings)
    matrices = lora_matrices(model)
    fraction = sum(matrices[n].numel() for n in located) / sum(p.numel() for p in matrices.values())
    modules = sorted({base_module_name(n) for n in located})
    return Localization(located, modules, fraction, settings, scores)


def localize(model: nn.Module, tokenizer, unlearn: Records, retain: Records, settings: LocalizeSettings,
             max_length: int = 512) -> Localization:
    """Locate the unlearn knowledge in `model` (already wrapped with LoRA, see `models.add_lora`)."""
    device = next(model.parameters()).device

    def one_by_one(records: Records) -> Iterator[Batch]:
        examples = Examples(encode_records(tokenizer, records, max_length), tokenizer.pad_token_id)
        return (examples.batch([i]).to(device) for i in range(len(examples)))

    if settings.retain_sample is not None and len(retain) > settings.retain_sample:
        retain = random.Random(settings.seed).sample(list(retain), settings.retain_sample)
    generator = torch.Generator().manual_seed(settings.seed)
    return locate(model, one_by_one(unlearn), one_by_one(retain), settings, generator)
