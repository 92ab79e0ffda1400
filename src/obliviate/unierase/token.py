"""The unlearning token: a new vocabulary entry whose one learned meaning is "a refusal follows".

As UniErase's `train_UNL.ipynb` does it: the new row starts as the model's other new rows would (N(0, σ) with σ the
config's `initializer_range`), an untied LM head copies that first value into its own row and keeps it, and only the
input-embedding row trains (a gradient hook zeroes every other row; the optimizer has no weight decay, so the others
stay bit-for-bit the same). The sequences are

    question, <unlearn_0>, refusal, <unlearn_0>, EOS

with the loss on the refusal, the closing token and EOS (the EOS makes generation stop there), the question
written plainly or as the model is asked (its chat template, or the plain "Question: … Answer:" format). A forget
set smaller than the notebook's 400 questions is gone through several times an epoch, up to `questions_per_epoch`
questions, each time with the same refusals, so that a few questions get as many optimiser steps as the notebook
gives its token. Training
runs in the engine's loop (`obliviate.unlearn.loop.train`) in three phases: on the plain sequences at `lr`, on
plain and asked ones at `lr_second`, then per edit layer a robustness phase in which that layer's MLP down
projection computes with fresh noise at every forward pass, so that the token still works once the edit has
changed the layer. With `keep_weight` > 0 the preserved knowledge's answers are trained too (their NLL, that
weight): the row then learns not to be predicted inside them, which a tied row otherwise is, being the closing
token of every refusal.
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from obliviate.data import QARecord, load_refusals
from obliviate.errors import ObliviateError
from obliviate.io import content_digest
from obliviate.models import (embedding_matrix, embeddings_tied, linear_weight_as_out_in, mlp_down_proj,
                              output_embedding_matrix, unwrap)
from obliviate.prompts import IGNORE_INDEX, EncodedQA, answer_ids, prompt_ids, uses_chat_template
from obliviate.unierase.config import TokenSettings
from obliviate.unlearn.accelerator import make_accelerator
from obliviate.unlearn.batches import Examples, TrainingData
from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.loop import train
from obliviate.unlearn.losses import mean_nll, retain_term
from obliviate.unlearn.registry import LossTerms, Method, Step


def add_unlearning_token(model: nn.Module, tokenizer, settings: TokenSettings) -> int:
    """Add `settings.token` to the vocabulary, its input row drawn from N(0, initializer_range) as Hugging Face
    initialises new rows (an untied LM head copies it). Returns its id."""
    tokenizer.add_tokens([settings.token], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(settings.token)
    if token_id >= embedding_matrix(model).shape[0]:  # some vocabularies keep spare rows: no resize then
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        inputs = embedding_matrix(model)
        generator = torch.Generator().manual_seed(settings.seed)
        std = getattr(unwrap(model).config, "initializer_range", 0.02)
        inputs[token_id] = (torch.randn(inputs.shape[1], generator=generator) * std).to(inputs)
        if not embeddings_tied(model):
            output_embedding_matrix(model)[token_id] = inputs[token_id]
    return token_id


def train_unlearning_token(model: nn.Module, tokenizer, records: list[QARecord], token_id: int,
                           edit_layers: list[int], settings: TokenSettings,
                           preserved: list[EncodedQA] | None = None) -> float:
    """Train the token's input row on refusals after `records`' questions (and, with `settings.keep_weight`, on the
    `preserved` sequences' answers); returns the seconds it took."""
    started = time.perf_counter()
    repeats = passes_per_epoch(len(records), settings.questions_per_epoch)
    plain = _refusal_sequences(tokenizer, records, token_id, settings, asked=False) * repeats
    both = plain + _refusal_sequences(tokenizer, records, token_id, settings, asked=True) * repeats
    kept = None
    if settings.keep_weight > 0:
        if not preserved:
            raise ObliviateError("token.keep_weight > 0 trains on the preserved knowledge: set preserved to a data "
                                 "spec (e.g. world:retain or a QA file), not 'general' or 'sampled'")
        kept = Examples(preserved, tokenizer.pad_token_id)
    phases = [(plain, settings.epochs, settings.lr, None), (both, settings.epochs_second, settings.lr_second, None)]
    phases += [(both, settings.noise_epochs, settings.lr_second, layer) for layer in edit_layers]
    with _only_row_trainable(model, token_id):
        for sequences, epochs, lr, noisy_layer in phases:
            config = UnlearnConfig(epochs=epochs, lr=lr, batch_size=settings.batch_size, weight_decay=0.0,
                                   max_grad_norm=None, checkpoint_every=0, seed=settings.seed,
                                   retain_loss="none" if kept is None else "gd", alpha=settings.keep_weight)
            examples = Examples(sequences, tokenizer.pad_token_id)
            data = TrainingData(examples, kept, None, config.batch_size, config.batch_size, config.seed)
            with _noisy_down_proj(model, noisy_layer, settings.seed):
                train(model, REFUSAL_AFTER_TOKEN, config, data, make_accelerator(), tokenizer.pad_token_id,
                      run_id={"method": REFUSAL_AFTER_TOKEN.name})
    model.eval()
    return time.perf_counter() - started


TOKEN_FILE = "token.safetensors"  # the trained rows, beside the manifest that says how they were trained


def token_provenance(model: nn.Module, records: list[QARecord], edit_layers: list[int], settings: TokenSettings,
                     preserved: str) -> dict:
    """What decides the trained token: the model it starts in, the forget questions, the edit layers (one noise phase
    each), the settings, and the preserved data when it is trained on. Two runs with equal provenance can share it."""
    provenance = {"model": str(getattr(unwrap(model), "name_or_path", "")),
                  "forget_questions": content_digest([record.question for record in records], 16),
                  "edit_layers": sorted(edit_layers),
                  "settings": {key: value for key, value in asdict(settings).items() if key != "reuse"}}
    return provenance | ({"preserved": preserved} if settings.keep_weight > 0 else {})


def save_token(model: nn.Module, token_id: int, path: Path) -> None:
    rows = {"input": embedding_matrix(model)[token_id]}
    if not embeddings_tied(model):
        rows["output"] = output_embedding_matrix(model)[token_id]
    save_file({name: row.detach().contiguous().cpu() for name, row in rows.items()}, path)


def load_token(model: nn.Module, token_id: int, provenance: dict, trained: dict, path: Path) -> None:
    """Set the token's rows to those saved in `path`, after checking that they were trained (`trained`, their
    provenance) as this run would train them (`provenance`)."""
    wanted, found = _provenance_fields(provenance), _provenance_fields(trained)
    for name, value in wanted.items():
        if found.get(name) != value:
            raise ObliviateError(f"token.reuse: {path}: its token was trained with a different {name} "
                                 f"({found.get(name)!r}, not {value!r})")
    rows = load_file(path)
    with torch.no_grad():
        embedding_matrix(model)[token_id] = rows["input"]
        if not embeddings_tied(model):
            output_embedding_matrix(model)[token_id] = rows["output"]


def _provenance_fields(provenance: dict) -> dict:
    """`token_provenance` flat: the token settings as "token.<name>", the rest by their keys."""
    settings = provenance.get("settings", {})
    return {key: value for key, value in provenance.items() if key != "settings"} | {
        f"token.{name}": value for name, value in settings.items()}


def answers_after_token(model: nn.Module, tokenizer, questions: list[str], token_id: int,
                        max_new_tokens: int = 16) -> list[str]:
    """Greedy continuations of each question as the model is asked, followed by the unlearning token: what the token
    alone makes the model say (stage 1 works when these are refusals)."""
    device = next(model.parameters()).device
    answers = []
    for question in questions:
        ids = torch.tensor([prompt_ids(tokenizer, question) + [token_id]], device=device)
        output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers.append(tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True))
    return answers


def _refusal_loss(step: Step, cfg: UnlearnConfig) -> LossTerms:
    yield "refusal", mean_nll(step.logits(step.forget), step.forget.labels).mean()
    yield from retain_term(step, cfg)


# Not registered: it only makes sense with the row-masking set up by `train_unlearning_token`.
REFUSAL_AFTER_TOKEN = Method("unlearning_token", "CE(question + token → refusal + token) [+ α·CE(preserved)]",
                             UnlearnConfig, _refusal_loss, frozenset())


def passes_per_epoch(questions: int, questions_per_epoch: int) -> int:
    """How many times an epoch goes through `questions` so that it holds at least `questions_per_epoch` of them."""
    return max(1, -(-questions_per_epoch // questions)) if questions else 1


def _refusal_sequences(tokenizer, records: list[QARecord], token_id: int, settings: TokenSettings,
                       asked: bool = True) -> list[EncodedQA]:
    """Each question with `settings.refusals_per_question` random refusals, written as the model is asked
    (`asked`: `prompt_ids`) or plainly (the question's text alone)."""
    rng = random.Random(settings.seed)
    refusals = load_refusals(settings.refusals)
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    space = not uses_chat_template(tokenizer)  # the refusal is written as the model writes an answer in its format
    sequences = []
    for record in records:
        question = prompt_ids(tokenizer, record.question) if asked else tokenizer(record.question)["input_ids"]
        prompt = question + [token_id]
        for refusal in rng.sample(refusals, min(settings.refusals_per_question, len(refusals))):
            answer = answer_ids(tokenizer, refusal, add_eos=False, space=space) + [token_id] + end
            sequences.append(EncodedQA(prompt + answer, [IGNORE_INDEX] * len(prompt) + answer))
    return sequences


@contextlib.contextmanager
def _only_row_trainable(model: nn.Module, token_id: int) -> Iterator[None]:
    """Inside the block only the input embedding trains, and of it only row `token_id` (UniErase's `share=True`:
    an untied LM head keeps the row it was given)."""
    previous = {parameter: parameter.requires_grad for parameter in model.parameters()}
    model.requires_grad_(False)
    matrix = embedding_matrix(model)
    row = torch.zeros(matrix.shape[0], 1, dtype=matrix.dtype, device=matrix.device)
    row[token_id] = 1
    matrix.requires_grad_(True)
    handle = matrix.register_hook(lambda grad: grad * row)
    try:
        yield
    finally:
        handle.remove()
        for parameter, flag in previous.items():
            parameter.requires_grad_(flag)


def down_proj_noise(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """UniErase's perturbation of a down projection: N(0, m²) clipped to [−m, m], m = |mean(W)|. (The reference
    clamps to [−mean, mean] with the signed mean, which for a negative mean turns every element into the constant
    mean; the magnitude is kept here, not that accident.)"""
    bound = abs(float(weight.float().mean()))
    noise = torch.randn(weight.shape, generator=generator, device=weight.device, dtype=weight.dtype) * bound
    return noise.clamp(-bound, bound)


@contextlib.contextmanager
def _noisy_down_proj(model: nn.Module, layer: int | None, seed: int) -> Iterator[None]:
    """Layer `layer`'s MLP down projection computes with W + N, N = `down_proj_noise` drawn anew at every forward
    pass; the weights themselves are never touched. `layer=None`: no noise."""
    if layer is None:
        yield
        return
    module = mlp_down_proj(model, layer)
    weight = linear_weight_as_out_in(module)
    generator = torch.Generator(device=weight.device).manual_seed(seed + layer)

    def add_noise(_module, args, output):
        return output + F.linear(args[0], down_proj_noise(weight, generator))

    handle = module.register_forward_hook(add_noise)
    try:
        yield
    finally:
        handle.remove()
