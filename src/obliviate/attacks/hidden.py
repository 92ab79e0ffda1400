"""Hidden states for the probing attacks: the residual stream after every decoder layer."""

from __future__ import annotations

import torch

from obliviate.encoding import pad_id_of
from obliviate.models.architecture import decoder_layers, final_norm, output_embedding_matrix
from obliviate.prompts import prompt_ids


@torch.no_grad()
def hidden_states(model, sequences: list[list[int]], pad_id: int, batch_size: int = 32) -> list[torch.Tensor]:
    """Per sequence, a (layers + 1, length, hidden) tensor: the embeddings, then each layer's output.

    The last entry of transformers' `hidden_states` already went through the final norm; every
    other one is the raw residual stream (see `lens_logits`)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start:start + batch_size]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros_like(ids)
            for row, sequence in enumerate(batch):
                ids[row, :len(sequence)] = torch.tensor(sequence)
                attention[row, :len(sequence)] = 1
            states = model(input_ids=ids.to(device), attention_mask=attention.to(device),
                           output_hidden_states=True).hidden_states
            stacked = torch.stack(states, dim=1).float().cpu()  # (batch, layers + 1, width, hidden)
            out += [stacked[row, :, :len(sequence)] for row, sequence in enumerate(batch)]
    finally:
        model.train(was_training)
    return out


def last_prompt_states(model, tokenizer, questions: list[str], layer: int, batch_size: int = 32) -> torch.Tensor:
    """(n, hidden): the output of decoder layer `layer` (1-based) at each question prompt's last token."""
    prompts = [prompt_ids(tokenizer, q) for q in questions]
    states = hidden_states(model, prompts, pad_id_of(tokenizer), batch_size)
    return torch.stack([s[layer, -1] for s in states])


@torch.no_grad()
def lens_logits(model, state: torch.Tensor, layer: int) -> torch.Tensor:
    """The logit lens: a layer's residual stream read out through the final norm and the LM head."""
    head = output_embedding_matrix(model)
    state = state.to(head.device, head.dtype)
    if layer < len(decoder_layers(model)):
        state = final_norm(model)(state)
    return (state @ head.T).float()


