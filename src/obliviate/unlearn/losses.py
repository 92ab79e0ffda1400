"""Loss building blocks shared by the methods, computed over answer tokens only.

The logits at position t predict token t+1, so the "answer positions" of a batch are those whose
next token is labelled (label != -100): prompt and padding never count. Token values are averaged
per sequence and a method then averages the sequences of its batch. Every sequence weighs the
same whatever its length and whatever else is in its batch, so a batch split over processes
(whose gradients accelerate averages) trains exactly like the whole batch in one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from obliviate.prompts import IGNORE_INDEX


@dataclass
class AnswerTokens:
    """A model's outputs (logits, or hidden states) and the labels at the answer positions of a batch."""

    values: torch.Tensor  # (n, vocab) logits or (n, hidden) hidden states, in float32
    labels: torch.Tensor  # (n,)
    rows: torch.Tensor  # (n,) the sequence each token belongs to
    batch_size: int

    def nll(self) -> torch.Tensor:
        """(n,) negative log-likelihood of each answer token."""
        return F.cross_entropy(self.values, self.labels, reduction="none")

    def logprobs(self) -> torch.Tensor:
        """(n, vocab) log-probabilities over the vocabulary."""
        return torch.log_softmax(self.values, dim=-1)

    def per_sequence(self, values: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
        """(batch,) the sum or the mean of per-token `values` within each sequence."""
        sums = values.new_zeros(self.batch_size).index_add(0, self.rows, values)
        if reduce == "sum":
            return sums
        counts = torch.bincount(self.rows, minlength=self.batch_size).clamp(min=1)
        return sums / counts


def answer_tokens(outputs: torch.Tensor, labels: torch.Tensor) -> AnswerTokens:
    """The answer positions of `outputs` (batch, width, d): those whose next token is labelled. `outputs` may
    hold only the last positions of the batch (`Step.logits`), as long as they include every answer position."""
    targets = labels[:, labels.shape[1] - outputs.shape[1] + 1:]
    mask = targets != IGNORE_INDEX
    return AnswerTokens(outputs[:, :-1][mask].float(), targets[mask], mask.nonzero()[:, 0], labels.shape[0])


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch,) cross-entropy: mean NLL over each sequence's answer tokens."""
    tokens = answer_tokens(logits, labels)
    return tokens.per_sequence(tokens.nll())


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch,) log p(answer | prompt): the summed log-probability of each sequence's answer tokens."""
    tokens = answer_tokens(logits, labels)
    return -tokens.per_sequence(tokens.nll(), reduce="sum")


def kl_from_reference(logits: torch.Tensor, reference_logprobs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch,) mean over answer tokens of KL(p_ref || p_θ); `reference_logprobs` is (n, vocab) at those tokens."""
    tokens = answer_tokens(logits, labels)
    kl = F.kl_div(tokens.logprobs(), reference_logprobs, log_target=True, reduction="none").sum(-1)
    return tokens.per_sequence(kl)


def retain_term(step, cfg) -> Iterator[tuple[str, torch.Tensor]]:
    """The retain term `cfg.retain_loss` selects, weighted by `cfg.alpha` (nothing for "none"). "frozen_argmax":
    CE against the frozen model's likeliest next token at each retain answer position."""
    if cfg.retain_loss == "gd":
        yield "retain", cfg.alpha * mean_nll(step.logits(step.retain), step.retain.labels).mean()
    elif cfg.retain_loss == "frozen_argmax":
        greedy = step.reference_logits(step.retain).argmax(-1)
        targets = step.retain.labels.clone()  # the frozen model's choice at t - 1 labels token t
        targets[:, 1:] = torch.where(targets[:, 1:] != IGNORE_INDEX, greedy[:, :-1], IGNORE_INDEX)
        yield "retain", cfg.alpha * mean_nll(step.logits(step.retain), targets).mean()
    elif cfg.retain_loss == "kl":
        # The reference runs first and keeps only its answer positions, so its full logits are
        # freed before θ's forward pass builds a graph.
        reference = answer_tokens(step.reference_logits(step.retain), step.retain.labels).logprobs()
        yield "retain", cfg.alpha * kl_from_reference(step.logits(step.retain), reference, step.retain.labels).mean()
