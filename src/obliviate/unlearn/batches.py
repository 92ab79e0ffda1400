"""The data a training run sees: encoded forget / retain / alternative sequences and their batches.

Batches are a pure function of the step: each data set is read as an endless stream of shuffled
passes (pass p is the permutation seeded by (seed, p)), and micro-batch m of optimizer step s on
process r of R takes the next `batch_size` stream positions:

    start = ((s · grad_accum + m) · R + r) · batch_size

So every process draws different forget and retain items (their union is the global batch), one
process with batch 2b sees exactly what two processes with batch b see together, and resuming at
step s needs nothing but s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from obliviate.data import QARecord, TextRecord, load_refusals
from obliviate.errors import ObliviateError
from obliviate.encoding import encode_text, right_padded
from obliviate.eval.scoring import score_encoded
from obliviate.prompts import IGNORE_INDEX, EncodedQA, encode_qa

Records = list[QARecord] | list[TextRecord]


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor  # IGNORE_INDEX on prompt and padding
    reference_logprobs: torch.Tensor | None = None  # (batch,) log p_ref(answer | prompt), cached before training

    @property
    def inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]

    @property
    def width(self) -> int:
        return self.input_ids.shape[1]

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def scored_width(self) -> int:
        """How many positions, counted from the end, predict a labelled token: from the one before the
        batch's first labelled token on (the whole width when nothing is labelled)."""
        labelled = (self.labels != IGNORE_INDEX).any(0).nonzero()
        return self.width if labelled.numel() == 0 else self.width - int(labelled[0]) + 1

    def to(self, device) -> Batch:
        return Batch(**{f.name: None if (value := getattr(self, f.name)) is None else value.to(device)
                        for f in fields(self)})


def concat_batches(batches: list[Batch], pad_id: int) -> Batch:
    """One batch holding the rows of `batches`, right-padded to the widest."""
    width = max(b.width for b in batches)

    def padded(name: str, value: int) -> torch.Tensor:
        return torch.cat([F.pad(getattr(b, name), (0, width - b.width), value=value) for b in batches])

    return Batch(padded("input_ids", pad_id), padded("attention_mask", 0), padded("labels", IGNORE_INDEX))


class Examples:
    """The encoded sequences of one data set and, once cached, each one's reference log-probability."""

    def __init__(self, encoded: list[EncodedQA], pad_id: int):
        self.encoded, self.pad_id = encoded, pad_id
        self.reference_logprobs: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.encoded)

    def batch(self, indices: list[int]) -> Batch:
        input_ids, labels, attention = right_padded(self.encoded, indices, self.pad_id)
        reference = None if self.reference_logprobs is None else self.reference_logprobs[indices]
        return Batch(input_ids, attention, labels, reference)

    def cache_reference_logprobs(self, model, batch_size: int) -> None:
        """log p(answer | prompt) of every sequence under `model` as it is now (before training)."""
        scores = score_encoded(model, self.encoded, batch_size, self.pad_id, "reference log-probs")
        self.reference_logprobs = torch.stack([score.logprobs.sum() for score in scores])


class IndexStream:
    """Endless shuffled passes over range(size); pass p is the permutation seeded by (seed, p)."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed = size, seed
        self._passes: dict[int, list[int]] = {}

    def _pass(self, number: int) -> list[int]:
        if number not in self._passes:
            order = list(range(self.size))
            random.Random(f"{self.seed}:{number}").shuffle(order)
            self._passes = {number: order}  # passes are read in order: keep only the current one
        return self._passes[number]

    def take(self, start: int, count: int) -> list[int]:
        return [self._pass(position // self.size)[position % self.size] for position in range(start, start + count)]


@dataclass
class MicroBatch:
    forget: Batch
    retain: Batch | None
    alternative: Batch | None  # the forget prompts with alternative answers, row for row

    def _batches(self) -> list[Batch]:
        return [b for b in (self.forget, self.retain, self.alternative) if b is not None]

    @property
    def tokens(self) -> int:
        return sum(b.tokens for b in self._batches())

    def to(self, device) -> MicroBatch:
        return MicroBatch(*(None if b is None else b.to(device) for b in (self.forget, self.retain, self.alternative)))


class TrainingData:
    def __init__(self, forget: Examples, retain: Examples | None, alternative: Examples | None,
                 batch_size: int, retain_batch_size: int, seed: int):
        self.forget, self.retain, self.alternative = forget, retain, alternative
        self.batch_size, self.retain_batch_size = batch_size, retain_batch_size
        self.forget_stream = IndexStream(len(forget), seed)
        self.retain_stream = IndexStream(len(retain), seed + 1) if retain is not None else None

    def micro_batch(self, position: int, process: int, processes: int) -> MicroBatch:
        """Micro-batch number `position` (= step · grad_accum + micro) of process `process`."""
        chunk = position * processes + process
        forget_indices = self.forget_stream.take(chunk * self.batch_size, self.batch_size)
        retain = None
        if self.retain is not None:
            retain = self.retain.batch(self.retain_stream.take(chunk * self.retain_batch_size, self.retain_batch_size))
        alternative = self.alternative.batch(forget_indices) if self.alternative is not None else None
        return MicroBatch(self.forget.batch(forget_indices), retain, alternative)


def encode_records(tokenizer, records: Records, max_length: int) -> list[EncodedQA]:
    """QA records as prompt + answer (loss on the answer); texts with the loss on every token."""
    return [encode_qa(tokenizer, r.question, r.answer, max_length) if isinstance(r, QARecord)
            else encode_text(tokenizer, r.text, max_length) for r in records]


def alternative_answers(records: Records, kind: str, seed: int) -> list[str]:
    """One fixed alternative answer per forget record: a refusal, or one of its perturbed (wrong) answers."""
    if not all(isinstance(r, QARecord) for r in records):
        raise ObliviateError("alternative answers need a question/answer forget set, not texts")
    rng = random.Random(seed)
    if kind == "refusal":
        refusals = load_refusals()
        return [rng.choice(refusals) for _ in records]
    missing = [i for i, r in enumerate(records) if not r.perturbed_answer]
    if missing:
        raise ObliviateError(f"forget record {missing[0]} has no perturbed_answer to use as the alternative; "
                             "use alternative=refusal")
    return [rng.choice(r.perturbed_answer) for r in records]


def build_training_data(tokenizer, forget: Records, retain: Records | None, cfg, needs: set[str]) -> TrainingData:
    def examples(encoded: list[EncodedQA]) -> Examples:
        return Examples(encoded, tokenizer.pad_token_id)

    alternatives = None
    if "alternatives" in needs:
        answers = alternative_answers(forget, cfg.alternative, cfg.seed)
        alternatives = examples([encode_qa(tokenizer, r.question, a, cfg.max_length) for r, a in zip(forget, answers)])
    retained = examples(encode_records(tokenizer, retain, cfg.max_length)) if "retain" in needs else None
    return TrainingData(examples(encode_records(tokenizer, forget, cfg.max_length)), retained, alternatives,
                        cfg.batch_size, cfg.retain_batch, cfg.seed)
