"""ELM (Erasure of Language Memory): make the model read a concept's texts like a novice would,
stay itself on retain text, and answer fluently but uninformatively when asked about the concept.

Three loss terms on a LoRA update of a few middle layers, on forget and retain passages cut to their
first `max_chars` (700) characters:

* erase: CE of θ on the forget passage against the frozen model's "introspective" target
  log P' ∝ log P(x) + η·(log P(x | novice prefix) − log P(x | expert prefix)), with η ramped over
  the passage's trained positions from 1 to η_max, logits / temperature, and only the top-k entries kept;
* retain: `retain_loss` on retain text, weighted by alpha: "frozen_argmax" (the default) is CE against
  the frozen model's likeliest next tokens, "kl" KL to its distribution;
* consistency: NLL of θ on the steer-away sentence and the frozen model's novice-guided continuation
  of a forget prompt, prepared once by `obliviate.unlearn.methods.elm.generations.prepare_elm_data`
  (`elm_data=PATH`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import torch

from obliviate.concept_prompts import ELM_EXPERT_TEMPLATES, ELM_NOVICE_TEMPLATES
from obliviate.errors import ObliviateError
from obliviate.models import LoraSettings
from obliviate.prompts import IGNORE_INDEX, EncodedQA
from obliviate.unlearn.batches import Batch, Examples, Records
from obliviate.unlearn.config import UnlearnConfig
from obliviate.data import TextRecord
from obliviate.unlearn.methods.elm.generations import capped_text, passage_key, prepare_elm_data, with_prefix
from obliviate.unlearn.losses import answer_tokens, mean_nll, retain_term
from obliviate.unlearn.registry import LossTerms, Preparation, RunInputs, Step, register_method



def published_lora() -> LoraSettings:
    return LoraSettings(r=4, alpha=16, dropout=0.05, layers=[4, 5, 6, 7],
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


@dataclass
class ELMConfig(UnlearnConfig):
    # gamma weighs the erase term, alpha the retain term
    consistency_weight: float = 1.0
    # frozen_argmax: CE against the frozen model's likeliest next tokens; kl: KL(p_ref || p_θ); gd: NLL of the text
    retain_loss: Literal["frozen_argmax", "kl", "gd"] = "frozen_argmax"
    concept: str = ""  # a name or comma-joined keywords, filling {concept} in the templates
    expert_templates: list[str] = field(default_factory=lambda: list(ELM_EXPERT_TEMPLATES))
    novice_templates: list[str] = field(default_factory=lambda: list(ELM_NOVICE_TEMPLATES))
    eta_max: float = 1000.0
    temperature: float = 1.2
    top_k: int = 50
    max_chars: int = 700  # forget and retain passages are cut to this many characters
    # consistency generations (see generations.py)
    elm_data: str | None = None  # the prepared file; prepare_elm_data(model, forget, cfg) makes it
    guidance_scale: float = 3.0
    prompt_min_chars: int = 50
    prompt_max_chars: int = 300
    generation_min_tokens: int = 100
    generation_max_tokens: int = 300
    # the reference code's training setting
    lr: float = 5e-5
    weight_decay: float = 0.01
    max_grad_norm: float | None = None
    batch_size: int = 1
    grad_accum: int = 4
    use_lora: bool = True
    lora: LoraSettings = field(default_factory=published_lora)


@dataclass(frozen=True)
class ELMData:
    expert_prefixes: list[list[int]]
    novice_prefixes: list[list[int]]
    generations: dict[str, EncodedQA]  # passage key → forget prompt + continuation, labelled on the continuation


@lru_cache(maxsize=4)
def load_elm_data(path: str) -> ELMData:
    data = json.loads(open(path, encoding="utf-8").read())
    generations = {g["passage"]: EncodedQA(g["input_ids"], [IGNORE_INDEX] * g["prompt_length"]
                                           + g["input_ids"][g["prompt_length"]:]) for g in data["generations"]}
    return ELMData(data["expert_prefixes"], data["novice_prefixes"], generations)


def pick(options: list):
    """One of `options`, drawn from torch's seeded generator (so a run is reproducible)."""
    return options[int(torch.randint(len(options), ()))]


def eta_ramp(labels: torch.Tensor, eta_max: float) -> torch.Tensor:
    """(n,) η at the answer positions of a batch (in `answer_tokens` order), rising linearly from 1 at each
    sequence's first trained position to eta_max at its last."""
    trained = labels[:, 1:] != IGNORE_INDEX
    order = trained.cumsum(1) - 1
    last = (trained.sum(1, keepdim=True) - 1).clamp(min=1)
    return (1 + (eta_max - 1) * order / last)[trained]


@torch.no_grad()
def erase_target(step: Step, cfg: ELMConfig, data: ELMData) -> torch.Tensor:
    """(n, vocab) the detached soft target P' at the forget batch's labelled positions, in float64."""
    forget = step.forget

    def logprobs(prefix: list[int]) -> torch.Tensor:
        prefixed = Batch(with_prefix(forget.input_ids, prefix), with_prefix(forget.attention_mask, [1] * len(prefix)),
                         forget.labels)
        logits = step.reference_logits(prefixed)[:, len(prefix):len(prefix) + forget.width]
        return torch.log_softmax(answer_tokens(logits, forget.labels).values.double() / cfg.temperature, dim=-1)

    eta = eta_ramp(forget.labels, cfg.eta_max).double().unsqueeze(-1)
    score = logprobs([]) + eta * (logprobs(pick(data.novice_prefixes)) - logprobs(pick(data.expert_prefixes)))
    kth_best = score.topk(min(cfg.top_k, score.shape[-1]), dim=-1).values[:, -1:]
    return torch.softmax(score.masked_fill(score < kth_best, float("-inf")), dim=-1)


def consistency_batch(forget: Batch, data: ELMData, pad_id: int) -> Batch | None:
    """The consistency generations of the forget batch's passages (those that have one)."""
    examples = []
    for ids, length in zip(forget.input_ids.tolist(), forget.attention_mask.sum(1).tolist()):
        generation = data.generations.get(passage_key(ids[:length]))
        if generation is not None:
            examples.append(generation)
    if not examples:
        return None
    return Examples(examples, pad_id).batch(list(range(len(examples)))).to(forget.input_ids.device)


def capped(records: Records, max_chars: int) -> Records:
    """The records with each text cut to `max_chars` characters (question-answer records as they are)."""
    return [dataclasses.replace(r, text=capped_text(r.text, max_chars)) if isinstance(r, TextRecord) else r
            for r in records]


def prepare_elm(inputs: RunInputs, cfg: ELMConfig) -> Preparation:
    """The passages cut to `cfg.max_chars`, and the consistency generations: `cfg.elm_data` if given, else made
    now (or found in the cache)."""
    if not all(isinstance(r, TextRecord) for r in inputs.forget):
        raise ObliviateError("elm erases a concept from texts: its forget data must be text records (a 'text' field)")
    if not cfg.elm_data:
        cfg.elm_data = str(prepare_elm_data(inputs.source, inputs.forget, cfg))
    retain = None if inputs.retain is None else capped(inputs.retain, cfg.max_chars)
    return Preparation(report={"elm_data": cfg.elm_data}, forget=capped(inputs.forget, cfg.max_chars), retain=retain)


@register_method("elm", ELMConfig,
                 "ELM: CE to the novice-vs-expert target + retain + consistency on guided generations",
                 {"reference_model"}, prepare=prepare_elm)
def elm(step: Step, cfg: ELMConfig) -> LossTerms:
    data = load_elm_data(cfg.elm_data)
    target = erase_target(step, cfg, data)
    tokens = answer_tokens(step.logits(step.forget), step.forget.labels)
    yield "erase", cfg.gamma * tokens.per_sequence(-(target * tokens.logprobs().double()).sum(-1)).float().mean()
    yield from retain_term(step, cfg)
    consistency = consistency_batch(step.forget, data, step.pad_id)
    if consistency is not None:
        yield "consistency", cfg.consistency_weight * mean_nll(step.logits(consistency), consistency.labels).mean()
