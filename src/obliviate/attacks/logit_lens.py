"""Logit lens: read each layer's residual stream through the final norm and LM head.

For every forget question the answer is fed after the prompt (teacher forcing) and, at each layer,
we check whether every answer token is the lens's top-1 at the position before it. `recovered` is
the best layer's fraction of fully read-out answers: knowledge suppressed only in the last layers
(a refusal put on top) is still legible below them. The first answer token's lens rank per layer
is kept in the details.
"""

from __future__ import annotations

import torch

from obliviate.attacks.context import AttackContext, Subject
from obliviate.attacks.extraction import encode_continuation, qa_prompt
from obliviate.attacks.hidden import hidden_states, lens_logits
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.encoding import pad_id_of
from obliviate.models.architecture import num_layers


@register_attack("logit_lens", "probing", "lens_extraction")
def logit_lens(subject: Subject, context: AttackContext) -> Measurement:
    tok, model = subject.tokenizer, subject.model
    encoded = [encode_continuation(tok, qa_prompt(tok, r.question), r.answer) for r in context.forget]
    states = hidden_states(model, [e.input_ids for e in encoded], pad_id_of(tok), context.settings.batch_size)
    layers = range(1, num_layers(model) + 1)
    read_out = torch.zeros(len(layers))
    first_rank = torch.zeros(len(layers))
    for e, state in zip(encoded, states):
        start = e.prompt_length
        targets = torch.tensor(e.input_ids[start:])
        for i, layer in enumerate(layers):
            logits = lens_logits(model, state[layer, start - 1:-1], layer)  # position t predicts token t + 1
            read_out[i] += float((logits.argmax(-1).cpu() == targets).all())
            first_rank[i] += float((logits[0] > logits[0, targets[0]]).sum())
    read_out, first_rank = read_out / len(encoded), first_rank / len(encoded)
    best = int(read_out.argmax())
    return Measurement(float(read_out[best]), len(encoded), {
        "best_layer": layers[best], "per_layer": read_out.tolist(), "mean_first_token_rank": first_rank.tolist()})
