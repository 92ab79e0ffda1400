"""The value an edit writes: z = h + δ at the last edit layer's output (the residual stream after its MLP).

δ is optimised as AlphaEdit's `compute_z` does: added at the key positions, it makes the model emit the
target after the question in every context; a KL term, KL(now ‖ before) of the next-token distribution at the
subject's last token of "{subject} is a" (δ added there too), keeps what the model says of the subject; a weight
decay ‖δ‖/‖h‖² keeps δ small; ‖δ‖ is clamped to `clamp_norm_factor`·‖h‖. The loop stops once the whole loss is
below 0.05, and its last pass takes no step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.editing.activations import added_at, hidden_at
from obliviate.editing.requests import (EditRequest, KeyedPrompt, KeyToken, context_batch, prompt_batch,
                                       question_prompt, subject_statement, target_ids)
from obliviate.editing.settings import ValueSettings
from obliviate.prompts import IGNORE_INDEX

EARLY_STOP_LOSS = 5e-2  # MEMIT and AlphaEdit stop once the whole loss is below this


def target_value(model: nn.Module, tokenizer, request: EditRequest, contexts: list[str], layer: int,
                 settings: ValueSettings, key_token: KeyToken = "subject_last") -> torch.Tensor:
    """(keys, d) z: the output of decoder layer `layer` at the request's key positions (one row each) that
    makes the model say the target."""
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id
    rewrites = context_batch(tokenizer, request, contexts, key_token, device, target_ids(tokenizer, request.target))
    statement = subject_statement(tokenizer, request.subject, key_token)
    plain = prompt_batch([question_prompt(tokenizer, request, key_token=key_token)], pad_id, device)
    hidden = hidden_at(model, plain, layer)
    # "{subject} is a" may split the subject differently: its key tokens are matched from the end.
    shared = min(len(hidden), len(statement.key_positions))
    statement = prompt_batch([KeyedPrompt(statement.input_ids, statement.key_positions[-shared:])], pad_id, device)
    with torch.no_grad():
        initial_statement = _key_logprobs(model, statement)

    delta = torch.zeros_like(hidden, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=settings.lr)
    max_norms = settings.clamp_norm_factor * hidden.norm(dim=-1, keepdim=True)
    for step in range(settings.steps):
        with added_at(model, layer, delta.repeat(len(contexts), 1), rewrites):
            logits = model(**rewrites.inputs).logits.float()
        nll = _target_nll(logits, rewrites.labels)
        with added_at(model, layer, delta[-shared:], statement):
            now = _key_logprobs(model, statement)
        # F.kl_div(input, target) is KL(target ‖ input): the reference passes (before, now), so KL(now ‖ before).
        drift = F.kl_div(initial_statement, now, log_target=True, reduction="batchmean")
        loss = nll + settings.kl_factor * drift + settings.weight_decay * delta.norm() / hidden.norm() ** 2
        if loss.item() < EARLY_STOP_LOSS or step == settings.steps - 1:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            delta.mul_((max_norms / delta.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0))
    return hidden + delta.detach()


def _target_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the contexts of the mean NLL of the target tokens (labels[t] is predicted at position t)."""
    mask = labels != IGNORE_INDEX
    nll = F.cross_entropy(logits[mask], labels[mask], reduction="none")
    rows = mask.nonzero()[:, 0]
    per_row = torch.zeros(labels.shape[0], device=logits.device).index_add(0, rows, nll) / mask.sum(1)
    return per_row.mean()


def _key_logprobs(model: nn.Module, batch) -> torch.Tensor:
    """(keys, vocabulary) next-token log-probabilities at the batch's key positions."""
    logits = model(**batch.inputs).logits.float()
    return torch.log_softmax(logits[batch.key_rows, batch.key_positions], dim=-1)
