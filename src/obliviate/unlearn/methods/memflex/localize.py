"""MemFlex localisation: which matrices of the LoRA adapter that learned the data carry the knowledge to
unlearn, and not the knowledge to keep (KnowUnDo's pretrain/localization.py).

For the unlearn set and the retention set (a seeded sample of `retain_sample` examples) separately, every
example is repeated `repeats` times, each copy corrupted as the reference's data_module does it (⌊n/2⌋
draws, with replacement, of the n answer positions; each drawn token becomes a random non-special id in
the input and the label alike), and the gradient of each LoRA A/B matrix of CE on the corrupted text is
averaged over those examples (batch 1, dropout off) → G_u, G_r. A matrix is located when
cos(G_u, G_r) < μ (specific to the unlearn knowledge) and mean|G_u| > σ (it carries signal).

On a freshly initialised adapter B = 0, so every A gradient is exactly 0: localise on the adapter that
learned the data (MemFlex learns one first when the run has none).

    found = localize(model_with_adapter, tokenizer, unlearn_records, retain_records, LocalizeSettings())
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
from obliviate.models import lora_base_module, lora_matrices
from obliviate.prompts import IGNORE_INDEX
from obliviate.unlearn.batches import Batch, Examples, Records, encode_records
from obliviate.unlearn.losses import mean_nll

@dataclass
class LocalizeSettings:
    repeats: int = 3  # the reference's num_copies
    max_cosine: float = 0.92  # μ
    min_magnitude: float = 6e-4  # σ, on mean |G_u|
    # G_r from a seeded sample of at most this many retention examples (None: all, as the reference): the mean
    # settles long before TOFU's 3,960 retain QA, which would cost 3 backward passes each.
    retain_sample: int | None = 400
    seed: int = 0


@dataclass
class Localization:
    located: list[str]  # LoRA matrix parameter names
    modules: list[str]  # base-model module names holding a located matrix
    located_fraction: float  # located LoRA parameters / all LoRA parameters: the share of the adapter trained
    settings: LocalizeSettings
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # per matrix: cosine, magnitude

    def save(self, path: str | Path) -> Path:
        atomic_write_json(path, asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Localization:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{**document, "settings": LocalizeSettings(**document["settings"])})


def special_ids(model: nn.Module, pad_id: int | None) -> list[int]:
    """The ids the corruption never draws: the model config's BOS, EOS and PAD, and the tokenizer's PAD."""
    config = model.config
    ids = [config.bos_token_id, config.eos_token_id, config.pad_token_id, pad_id]
    flat = [i for entry in ids for i in (entry if isinstance(entry, list) else [entry])]
    return sorted({i for i in flat if i is not None})


def corrupted(batch: Batch, vocab_size: int, excluded: list[int], generator: torch.Generator) -> Batch:
    """`batch` corrupted as KnowUnDo's `convert_to_model_format_with_random_label` does it: for a sequence with n
    answer tokens (not counting special ones), ⌊n/2⌋ answer positions are drawn with replacement and each gets a
    random id below `vocab_size`, not in `excluded`, in the input ids and the labels alike."""
    input_ids, labels = batch.input_ids.clone(), batch.labels.clone()
    excluded_ids = torch.tensor(excluded, dtype=input_ids.dtype)
    for row in range(input_ids.shape[0]):
        answer = (labels[row] != IGNORE_INDEX).cpu() & ~torch.isin(input_ids[row].cpu(), excluded_ids)
        positions = answer.nonzero().flatten()
        drawn = positions[torch.randint(len(positions), (len(positions) // 2,), generator=generator)]
        new_ids = torch.randint(vocab_size, (len(drawn),), generator=generator)
        while (redraw := torch.isin(new_ids, excluded_ids)).any():
            new_ids[redraw] = torch.randint(vocab_size, (int(redraw.sum()),), generator=generator)
        input_ids[row, drawn], labels[row, drawn] = new_ids.to(input_ids.device), new_ids.to(labels.device)
    return dataclasses.replace(batch, input_ids=input_ids, labels=labels)


def corrupted_gradients(model: nn.Module, batches: Iterable[Batch], settings: LocalizeSettings,
                        generator: torch.Generator, pad_id: int | None) -> dict[str, torch.Tensor]:
    """The mean gradient of every LoRA matrix of CE on corrupted answers, each batch `repeats` times, dropout off."""
    matrices = lora_matrices(model)
    sums = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in matrices.items()}
    vocab_size, excluded = model.get_output_embeddings().weight.shape[0], special_ids(model, pad_id)
    count, was_training = 0, model.training
    model.eval()
    try:
        for batch in batches:
            for _ in range(settings.repeats):
                noisy = corrupted(batch, vocab_size, excluded, generator)
                loss = mean_nll(model(**noisy.inputs, use_cache=False).logits, noisy.labels).mean()
                for total, grad in zip(sums.values(), torch.autograd.grad(loss, list(matrices.values()))):
                    total += grad.float()
                count += 1
    finally:
        model.train(was_training)
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
           generator: torch.Generator, pad_id: int | None = None) -> Localization:
    """Locate on a LoRA-wrapped `model` (not changed: gradients go to autograd.grad, not .grad). Its matrices must
    require grad (a trainable adapter)."""
    located, scores = select_matrices(corrupted_gradients(model, unlearn, settings, generator, pad_id),
                                      corrupted_gradients(model, retain, settings, generator, pad_id), settings)
    matrices = lora_matrices(model)
    fraction = sum(matrices[n].numel() for n in located) / sum(p.numel() for p in matrices.values())
    modules = sorted({lora_base_module(n) for n in located})
    return Localization(located, modules, fraction, settings, scores)


def localize(model: nn.Module, tokenizer, unlearn: Records, retain: Records, settings: LocalizeSettings,
             max_length: int = 512) -> Localization:
    """Locate the unlearn knowledge in `model`, wrapped with the LoRA adapter that learned it."""
    device = next(model.parameters()).device

    def one_by_one(records: Records) -> Iterator[Batch]:
        examples = Examples(encode_records(tokenizer, records, max_length), tokenizer.pad_token_id)
        return (examples.batch([i]).to(device) for i in range(len(examples)))

    if settings.retain_sample is not None and len(retain) > settings.retain_sample:
        retain = random.Random(settings.seed).sample(list(retain), settings.retain_sample)
    generator = torch.Generator().manual_seed(settings.seed)
    return locate(model, one_by_one(unlearn), one_by_one(retain), settings, generator, tokenizer.pad_token_id)
