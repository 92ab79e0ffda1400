"""The one teacher-forced scoring pass.

Every (prompt, answer) pair — or every text — is run through the model once; per answer token we
keep the label's log-probability, whether it was the argmax, and the mean and standard deviation of
log p over the vocabulary (what Min-k%++ needs). Every likelihood metric is computed from these.

Answers to the same question share their prompt (TOFU scores 7 answers per question: the answer,
its paraphrase and 5 perturbed ones): `score_answers` runs each prompt once, keeps its key/value
cache, and runs only the answers on top of it, as `generate` does after a prompt. That is the
same computation as the whole sequence at once, equal up to float rounding.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from obliviate.encoding import encode_text, left_padded, pad_id_of, right_padded
from obliviate.progress import progress
from obliviate.prompts import IGNORE_INDEX, EncodedQA, encode_qa


@dataclass
class SequenceScore:
    """Per-token results for the labelled (answer) tokens of one sequence."""

    token_ids: torch.Tensor  # (n,) the labels
    logprobs: torch.Tensor  # (n,) log p(label)
    argmax_correct: torch.Tensor  # (n,) bool
    vocab_logprob_mean: torch.Tensor  # (n,) E_{v~p}[log p(v)]
    vocab_logprob_std: torch.Tensor  # (n,) std_{v~p}[log p(v)]
    ends_with_eos: bool = False  # the last label is the end-of-sequence token the encoding appended

    def without_eos(self) -> "SequenceScore":
        """The answer's own tokens: the closing end-of-sequence token left out (as open-unlearning's EM and ES and
        lm-eval's choice log-likelihoods score them)."""
        if not self.ends_with_eos:
            return self
        return SequenceScore(self.token_ids[:-1], self.logprobs[:-1], self.argmax_correct[:-1],
                             self.vocab_logprob_mean[:-1], self.vocab_logprob_std[:-1])

    @property
    def n_tokens(self) -> int:
        return int(self.token_ids.numel())

    @property
    def nll(self) -> float:
        """Summed negative log-likelihood of the answer."""
        return float(-self.logprobs.sum())

    @property
    def mean_nll(self) -> float:
        return self.nll / max(1, self.n_tokens)


def count_forward_passes(model) -> "ForwardCounter":
    return ForwardCounter(model)


class ForwardCounter:
    """Counts the model's forward calls inside a `with` block (tests assert on it)."""

    def __init__(self, model):
        self.model, self.calls, self._handle = model, 0, None

    def __enter__(self):
        self._handle = self.model.register_forward_pre_hook(self._count)
        return self

    def _count(self, *_):
        self.calls += 1

    def __exit__(self, *exc):
        self._handle.remove()


@torch.no_grad()
def score_encoded(model, encoded: list[EncodedQA], batch_size: int = 32, pad_id: int = 0,
                  description: str = "scoring", eos_id: int | None = None) -> list[SequenceScore]:
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    results: list[SequenceScore | None] = [None] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        for start in progress(range(0, len(order), batch_size), description):
            batch = order[start:start + batch_size]
            input_ids, labels, attention = right_padded(encoded, batch, pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            # position t predicts token t+1
            shifted_labels = labels[:, 1:].to(device)
            mask = shifted_labels != IGNORE_INDEX
            per_position = _score_positions(logits[:, :-1][mask], shifted_labels[mask])
            del logits
            for i, row in zip(batch, _split_rows(per_position, mask.sum(1).tolist())):
                results[i] = _sequence_score(row, eos_id)
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


# Positions whose log-softmax over the vocabulary is held at once: bounds memory at large vocabularies
# (49k for SmolLM2: 64 MiB per float32 tensor) while tiny vocabularies take a whole batch in one go.
POSITION_CHUNK_ELEMENTS = 1 << 24


def _score_positions(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per labelled position: (label, log p(label), label is argmax, E_p[log p], std_p[log p]), on the CPU."""
    chunk = max(1, POSITION_CHUNK_ELEMENTS // max(1, logits.shape[-1]))
    parts = []
    for start in range(0, logits.shape[0], chunk):
        block, block_targets = logits[start:start + chunk].float(), targets[start:start + chunk]
        logp = torch.log_softmax(block, dim=-1)
        p = logp.exp()
        mean = (p * logp).sum(-1)
        var = (p * logp.square()).sum(-1) - mean.square()
        parts.append((block_targets, logp.gather(-1, block_targets[:, None]).squeeze(-1),
                      block.argmax(-1) == block_targets, mean, var.clamp_min(0).sqrt()))
    return tuple(torch.cat(column).cpu() for column in zip(*parts)) if parts else \
        tuple(torch.empty(0, dtype=dtype) for dtype in (torch.long, torch.float, torch.bool, torch.float, torch.float))


def _sequence_score(columns: tuple[torch.Tensor, ...], eos_id: int | None) -> SequenceScore:
    """One sequence's `_score_positions` columns; it ends with EOS when its last label is `eos_id`."""
    labels = columns[0]
    return SequenceScore(*columns, ends_with_eos=eos_id is not None and labels.numel() > 0
                         and int(labels[-1]) == eos_id)


def _split_rows(per_position: tuple[torch.Tensor, ...], counts: list[int]):
    """Per-position columns back into one tuple of columns per sequence."""
    return zip(*(torch.split(column, counts) for column in per_position))


def score_answers(model, tokenizer, pairs: list[tuple[str, str]], batch_size: int = 32, max_length: int = 512,
                  use_chat_template: bool | None = None, description: str = "scoring answers") -> list[SequenceScore]:
    """Score each (question, answer) pair: the answer tokens (and EOS) after the prompt."""
    encoded = [encode_qa(tokenizer, q, a, max_length, use_chat_template) for q, a in pairs]
    score = score_with_shared_prompts if shares_prompts(model) else score_encoded
    return score(model, encoded, batch_size, pad_id_of(tokenizer), description, tokenizer.eos_token_id)


def shares_prompts(model) -> bool:
    """Whether `model` can score answers on top of a cached prompt: a decoder that takes a cache whose rows can
    be repeated, and `logits_to_keep` (transformers' causal LMs do)."""
    return (not getattr(model.config, "is_encoder_decoder", False)
            and "logits_to_keep" in inspect.signature(model.forward).parameters
            and cache_argument_of(model) is not None and hasattr(DynamicCache, "batch_select_indices"))


def cache_argument_of(model) -> str | None:
    """The name `model.forward` takes its key/value cache by: `cache` (transformers ≥ 5.2x), else `past_key_values`."""
    parameters = inspect.signature(model.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in parameters), None)


@torch.no_grad()
def score_with_shared_prompts(model, encoded: list[EncodedQA], batch_size: int = 32, pad_id: int = 0,
                              description: str = "scoring", eos_id: int | None = None) -> list[SequenceScore]:
    """`score_encoded`'s results, with each distinct prompt (the unlabelled tokens before the answer) run once."""
    device = next(model.parameters()).device
    by_prompt: dict[tuple[int, ...], list[int]] = {}
    for i, item in enumerate(encoded):
        start = next((k for k, label in enumerate(item.labels) if label != IGNORE_INDEX), len(item.labels))
        by_prompt.setdefault(tuple(item.input_ids[:start]), []).append(i)
    batches = _prompt_batches(by_prompt, encoded, batch_size)
    cache_argument = cache_argument_of(model)
    results: list[SequenceScore | None] = [None] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        for batch in progress(batches, description):
            prompts = [prompt for prompt, _ in batch]
            rows = [i for _, members in batch for i in members]
            prompt_of_row = torch.tensor([g for g, (_, members) in enumerate(batch) for _ in members])
            answers = [encoded[i].input_ids[len(prompts[g]):] for g, (_, members) in enumerate(batch) for i in members]
            labels = [encoded[i].labels[len(prompts[g]):] for g, (_, members) in enumerate(batch) for i in members]
            per_position, counts = _score_after_prompts(model, cache_argument, prompts, prompt_of_row, answers,
                                                        labels, pad_id, device)
            for i, row in zip(rows, _split_rows(per_position, counts)):
                results[i] = _sequence_score(row, eos_id)
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def _prompt_batches(by_prompt: dict[tuple[int, ...], list[int]], encoded: list[EncodedQA], batch_size: int):
    """Batches of (prompt, answer indices) with at most `batch_size` answers each, prompts of similar length
    together (a prompt with more answers than that is split across batches)."""
    groups = [(prompt, members[k:k + batch_size]) for prompt, members in by_prompt.items()
              for k in range(0, len(members), batch_size)]
    groups.sort(key=lambda group: (len(group[0]), max(len(encoded[i].input_ids) for i in group[1])))
    batches, current, size = [], [], 0
    for prompt, members in groups:
        if size + len(members) > batch_size:
            batches.append(current)
            current, size = [], 0
        current.append((prompt, members))
        size += len(members)
    return batches + [current] if current else batches


def _score_after_prompts(model, cache_argument, prompts, prompt_of_row, answers, labels, pad_id, device):
    """Run the prompts (left-padded) once, repeat each one's cache for its answers, run the answers (right-padded)
    on top; per labelled answer position, `_score_positions`' columns, and the count per row."""
    prompt_ids, prompt_mask = left_padded(prompts, pad_id)
    width = prompt_ids.shape[1]
    prompt_lengths = prompt_mask.sum(1)
    cache = DynamicCache(config=model.config)
    with_cache = {cache_argument: cache, "use_cache": True}
    out = model(input_ids=prompt_ids.to(device), attention_mask=prompt_mask.to(device),
                position_ids=(prompt_lengths[:, None] - width + torch.arange(width)).clamp_min(0).to(device),
                logits_to_keep=1, **with_cache)
    first_logits = out.logits[:, -1]  # each prompt's last position predicts its answers' first token
    cache.batch_select_indices(prompt_of_row.to(device))

    # a row with nothing left to score (its prompt filled max_length) runs one unlabelled padding token
    segments = [EncodedQA(answer or [pad_id], label or [IGNORE_INDEX]) for answer, label in zip(answers, labels)]
    answer_ids, answer_labels, answer_mask = right_padded(segments, list(range(len(segments))), pad_id)
    answer_width = answer_ids.shape[1]
    positions = prompt_lengths[prompt_of_row][:, None] + torch.arange(answer_width)
    logits = model(input_ids=answer_ids.to(device),
                   attention_mask=torch.cat([prompt_mask[prompt_of_row], answer_mask], dim=1).to(device),
                   position_ids=positions.to(device), **with_cache).logits
    # answer token j is predicted by the position before it: the prompt's last for j = 0, answer token j-1 after
    predicting = torch.cat([first_logits[prompt_of_row.to(device)][:, None], logits[:, :-1]], dim=1)
    answer_labels = answer_labels.to(device)
    mask = answer_labels != IGNORE_INDEX
    return _score_positions(predicting[mask], answer_labels[mask]), mask.sum(1).tolist()


def score_texts(model, tokenizer, texts: list[str], batch_size: int = 16, max_length: int = 512,
                description: str = "scoring texts") -> list[SequenceScore]:
    encoded = [encode_text(tokenizer, t, max_length) for t in texts]
    return score_encoded(model, encoded, batch_size, pad_id_of(tokenizer), description)
