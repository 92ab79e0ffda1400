"""What ELM needs besides the forget and retain corpora, prepared once before training and cached:
the expert / novice prefixes as token ids, and the consistency generations.

A consistency generation is the frozen model's continuation of "{forget prompt}. {steer-away
sentence}" (the forget prompt is the first sentence of a forget passage), written while a logits
processor guides it away from the expert and towards the novice:

    score − γ·(log p(expert_prefix + text) − log p(novice_prefix + text))

Generating is slow, so the result is cached on disk under a key made of the model's fingerprint,
the forget passages and every setting that shapes it. ELM's prepare step calls `prepare_elm_data`
unless `elm_data=PATH` names a prepared file:

    path = prepare_elm_data(model_dir, forget_records, cfg)
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from obliviate.errors import ObliviateError
from obliviate.encoding import encode_text
from obliviate.io import atomic_write_json, cache_root, content_digest
from obliviate.models import load_model, load_tokenizer, model_fingerprint
from obliviate.progress import progress

STEER_AWAY = [
    "Let us not talk about this and change the topic to something fun.",
    "I do not know much about that, so here is something else entirely.",
    "Honestly, I would rather talk about something completely different.",
]


def prefix_ids(tokenizer, templates: list[str], concept: str) -> list[list[int]]:
    """Each template, filled with `concept`, as token ids without special tokens."""
    return [tokenizer(t.format(concept=concept), add_special_tokens=False)["input_ids"] for t in templates]


def with_prefix(input_ids: torch.Tensor, prefix: list[int]) -> torch.Tensor:
    """`input_ids` (batch, width; each row starting with BOS) with `prefix` put right after the BOS.

    Position t of the original run lines up with position t + len(prefix) of the prefixed one."""
    prefix_tensor = torch.tensor(prefix, dtype=input_ids.dtype, device=input_ids.device).expand(len(input_ids), -1)
    return torch.cat([input_ids[:, :1], prefix_tensor, input_ids[:, 1:]], dim=1)


class NoviceGuidance(LogitsProcessor):
    """score − γ·(log p(expert + text) − log p(novice + text)) at the next token, from the same frozen model."""

    def __init__(self, model, expert: list[int], novice: list[int], gamma: float):
        self.model, self.expert, self.novice, self.gamma = model, expert, novice, gamma

    def _next_logprobs(self, input_ids: torch.Tensor, prefix: list[int]) -> torch.Tensor:
        logits = self.model(input_ids=with_prefix(input_ids, prefix), use_cache=False).logits[:, -1]
        return torch.log_softmax(logits.double(), dim=-1)

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        shift = self._next_logprobs(input_ids, self.expert) - self._next_logprobs(input_ids, self.novice)
        return (torch.log_softmax(scores.double(), dim=-1) - self.gamma * shift).to(scores.dtype)


def forget_prompt(text: str, max_chars: int) -> str:
    """The first sentence of a forget passage (at most `max_chars`), without its full stop."""
    return text[:max_chars].split(". ")[0].rstrip(".")


@torch.no_grad()
def consistency_generations(model, tokenizer, texts: list[str], experts: list[list[int]], novices: list[list[int]],
                            cfg) -> list[dict]:
    """One guided greedy continuation per forget text: {"passage", "prompt", "input_ids", "prompt_length"}."""
    rng = random.Random(cfg.seed)
    model.eval()
    rows = []
    for text in progress(texts, "ELM consistency generations"):
        prompt = f"{forget_prompt(text, cfg.max_chars)}. {rng.choice(STEER_AWAY)}"
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        guidance = NoviceGuidance(model, rng.choice(experts), rng.choice(novices), cfg.guidance_scale)
        output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                max_new_tokens=cfg.generation_tokens, logits_processor=LogitsProcessorList([guidance]),
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        rows.append({"passage": passage_key(encode_text(tokenizer, text, cfg.max_length).input_ids), "prompt": prompt,
                     "input_ids": output[0].tolist(), "prompt_length": ids.shape[1]})
    return rows


def passage_key(input_ids: list[int]) -> str:
    """What identifies a forget passage inside the loss, which sees only its encoded ids (`encode_text`)."""
    return hashlib.sha256(json.dumps(input_ids).encode()).hexdigest()[:16]


def prepare_elm_data(model_dir: str | Path, forget: list, cfg) -> Path:
    """The cached ELM data file for `model_dir`, forget records (texts) and `cfg`; made on first use."""
    if not cfg.concept:
        raise ObliviateError("elm needs the concept to erase: --set concept='keyword, keyword, ...'")
    texts = [r.text for r in forget]
    settings = {"model": model_fingerprint(model_dir), "texts": texts, "concept": cfg.concept,
                "expert": cfg.expert_templates, "novice": cfg.novice_templates, "gamma": cfg.guidance_scale,
                "tokens": cfg.generation_tokens, "max_chars": cfg.max_chars, "max_length": cfg.max_length,
                "seed": cfg.seed, "steer_away": STEER_AWAY}
    path = cache_root() / "elm" / f"{content_digest(settings, 16)}.json"
    if path.is_file():
        return path
    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    experts = prefix_ids(tokenizer, cfg.expert_templates, cfg.concept)
    novices = prefix_ids(tokenizer, cfg.novice_templates, cfg.concept)
    generations = consistency_generations(model, tokenizer, texts, experts, novices, cfg)
    atomic_write_json(path, {"settings": settings, "expert_prefixes": experts, "novice_prefixes": novices,
                             "generations": generations})
    return path
