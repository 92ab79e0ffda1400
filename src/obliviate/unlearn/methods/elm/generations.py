"""What ELM needs besides the forget and retain corpora, prepared once before training and cached:
the expert / novice prefixes as token ids, and the consistency generations.

A consistency generation is the frozen model's continuation of "{prompt}. {steer-away sentence}", where
the prompt is a forget passage's first 50-300 characters (drawn at random), sampled for 100-300 tokens
(drawn at random) while a logits processor guides it away from the expert and towards the novice:

    log p(x_t | prompt, x_<t) − γ·(log p(x_t | expert_prefix, x_<t) − log p(x_t | novice_prefix, x_<t))

where x_<t are the tokens generated so far: the expert and novice runs never see the prompt.

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
from transformers import DynamicCache, LogitsProcessor, LogitsProcessorList

from obliviate.errors import ObliviateError
from obliviate.encoding import encode_text
from obliviate.eval.scoring import cache_argument_of
from obliviate.io import atomic_write_json, cache_root, content_digest
from obliviate.models import load_model, load_tokenizer, model_fingerprint
from obliviate.progress import progress

# Each ends with a comma, so the generation goes on with the new topic in the same sentence.
STEER_AWAY = [
    "That is not something worth getting into, so let us talk about a cheerful topic instead,",
    "Rather than go further down that road, here is something lighter to think about,",
    "I would prefer to leave that subject alone and turn to something more enjoyable,",
    "Setting that risky matter aside, we can chat about something far more pleasant,",
    "This is a touchy area, so the conversation moves on to a fun and unrelated theme,",
    "Let us drop that topic entirely and pick a more relaxing one to discuss,",
    "Instead of digging into that, how about a completely different and amusing subject,",
    "That question is best left unexplored, so here is a change of topic to something fun,",
    "Moving on from that uneasy subject to talk about something more lighthearted,",
    "Turning away from that sensitive matter, let us look at something entertaining,",
    "There is no need to go into that, so the talk shifts to a brighter subject,",
    "Skipping over that hazardous ground, we turn to something cheerful and harmless,",
    "Leaving that subject behind, the discussion heads somewhere more playful,",
    "That is a path better not taken, so let us wander off to a happier topic,",
    "Without lingering on that, here is something different and more fun to talk about,",
    "Let us change direction away from that troubling subject towards a pleasant one,",
    "Not wanting to dwell on that, the conversation switches to an easygoing topic,",
    "That subject is off the table, so we move to something amusing and unrelated,",
    "Stepping back from that dangerous discussion to enjoy a lighter subject instead,",
    "Putting that topic to rest, let us spend the time on something delightful,",
]


def prefix_ids(tokenizer, templates: list[str], concept: str) -> list[list[int]]:
    """Each template, filled with `concept`, as token ids without special tokens."""
    return [tokenizer(t.format(concept=concept), add_special_tokens=False)["input_ids"] for t in templates]


def with_prefix(input_ids: torch.Tensor, prefix: list[int]) -> torch.Tensor:
    """`input_ids` (batch, width; each row starting with BOS) with `prefix` put right after the BOS.

    Position t of the original run lines up with position t + len(prefix) of the prefixed one."""
    prefix_tensor = torch.tensor(prefix, dtype=input_ids.dtype, device=input_ids.device).expand(len(input_ids), -1)
    return torch.cat([input_ids[:, :1], prefix_tensor, input_ids[:, 1:]], dim=1)


def guidance_prefix(tokenizer, template: str, concept: str) -> list[int]:
    """BOS + the filled template without its closing colon: what the guiding runs read before the generated
    tokens."""
    return tokenizer(template.format(concept=concept).removesuffix(":"))["input_ids"]


class NoviceGuidance(LogitsProcessor):
    """log_softmax(score) − γ·(log p(· | expert, generated) − log p(· | novice, generated)) at the next token, for
    one sequence. The expert and novice runs of the same frozen model read their prefix and then the tokens
    generated after the prompt, one at a time on their own KV caches; they never see the prompt."""

    def __init__(self, model, expert: list[int], novice: list[int], gamma: float, prompt_length: int):
        self.model, self.gamma, self.prompt_length = model, gamma, prompt_length
        self.unread = [torch.tensor([expert]), torch.tensor([novice])]  # what each run reads at the next call
        self.caches = [DynamicCache(config=model.config), DynamicCache(config=model.config)]
        self.cache_argument = cache_argument_of(model)
        self.generated_read = 0

    def _next_logprobs(self, run: int, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=torch.cat([self.unread[run].to(tokens.device), tokens], dim=1),
                            use_cache=True, **{self.cache_argument: self.caches[run]}).logits
        self.unread[run] = tokens[:, :0]
        return torch.log_softmax(logits[:, -1].double(), dim=-1)

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        new_tokens = input_ids[:, self.prompt_length + self.generated_read:]
        self.generated_read += new_tokens.shape[1]
        shift = self._next_logprobs(0, new_tokens) - self._next_logprobs(1, new_tokens)
        return (torch.log_softmax(scores.double(), dim=-1) - self.gamma * shift).to(scores.dtype)


def capped_text(text: str, max_chars: int) -> str:
    """A passage as ELM trains on it: its first `max_chars` characters."""
    return text[:max_chars]


@torch.no_grad()
def consistency_generations(model, tokenizer, texts: list[str], cfg) -> list[dict]:
    """One guided, sampled continuation per forget text (already capped):
    {"passage", "prompt", "input_ids", "prompt_length"}; the tokens from `prompt_length` on (the steer-away
    sentence and the continuation) are what the consistency loss trains on."""
    rng = random.Random(cfg.seed)
    experts = [guidance_prefix(tokenizer, t, cfg.concept) for t in cfg.expert_templates]
    novices = [guidance_prefix(tokenizer, t, cfg.concept) for t in cfg.novice_templates]
    model.eval()
    rows = []
    # sampling draws from torch's generator: fork it, so a run trains alike whether or not its data was cached
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        for text in progress(texts, "ELM consistency generations"):
            prompt = text[:rng.randint(cfg.prompt_min_chars, cfg.prompt_max_chars)]
            ids = torch.tensor([tokenizer(f"{prompt}. {rng.choice(STEER_AWAY)}")["input_ids"]])
            guidance = NoviceGuidance(model, rng.choice(experts), rng.choice(novices), cfg.guidance_scale,
                                      ids.shape[1])
            output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                    temperature=1.0, top_k=0, top_p=1.0,
                                    max_new_tokens=rng.randint(cfg.generation_min_tokens, cfg.generation_max_tokens),
                                    logits_processor=LogitsProcessorList([guidance]),
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            # the prompt and the full stop after it are not trained on
            rows.append({"passage": passage_key(encode_text(tokenizer, text, cfg.max_length).input_ids),
                         "prompt": prompt, "input_ids": output[0].tolist(),
                         "prompt_length": len(tokenizer(f"{prompt}.")["input_ids"])})
    return rows


def passage_key(input_ids: list[int]) -> str:
    """What identifies a forget passage inside the loss, which sees only its encoded ids (`encode_text`)."""
    return hashlib.sha256(json.dumps(input_ids).encode()).hexdigest()[:16]


def prepare_elm_data(model_dir: str | Path, forget: list, cfg) -> Path:
    """The cached ELM data file for `model_dir`, forget records (texts) and `cfg`; made on first use."""
    if not cfg.concept:
        raise ObliviateError("elm needs the concept to erase: --set concept='keyword, keyword, ...'")
    texts = [capped_text(r.text, cfg.max_chars) for r in forget]
    settings = {"model": model_fingerprint(model_dir), "texts": texts, "concept": cfg.concept,
                "expert": cfg.expert_templates, "novice": cfg.novice_templates, "gamma": cfg.guidance_scale,
                "tokens": [cfg.generation_min_tokens, cfg.generation_max_tokens],
                "prompt_chars": [cfg.prompt_min_chars, cfg.prompt_max_chars], "max_length": cfg.max_length,
                "seed": cfg.seed, "steer_away": STEER_AWAY}
    path = cache_root() / "elm" / f"{content_digest(settings, 16)}.json"
    if path.is_file():
        return path
    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    generations = consistency_generations(model, tokenizer, texts, cfg)
    atomic_write_json(path, {"settings": settings,
                             "expert_prefixes": prefix_ids(tokenizer, cfg.expert_templates, cfg.concept),
                             "novice_prefixes": prefix_ids(tokenizer, cfg.novice_templates, cfg.concept),
                             "generations": generations})
    return path
