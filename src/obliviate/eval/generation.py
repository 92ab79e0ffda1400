"""Batched greedy generation with left padding, shared by every generation metric.

An answer ends at the tokenizer's EOS token, the token that training and scoring append to an
answer (`prompts.answer_ids`; a chat model's end of turn, `<|im_end|>` for SmolLM2), or at any
other EOS id the model's generation config lists; nothing generated after it is decoded.
"""

from __future__ import annotations

import torch

from obliviate.progress import progress
from obliviate.prompts import clean_generation, prompt_ids


@torch.no_grad()
def generate_answers(model, tokenizer, questions: list[str], max_new_tokens: int = 32, batch_size: int = 64,
                     use_chat_template: bool | None = None, first_line_only: bool = True,
                     description: str = "generating") -> list[str]:
    """Greedy answers to `questions`, in order. Batches are formed from prompts of similar length."""
    device = next(model.parameters()).device
    encoded = [prompt_ids(tokenizer, q, use_chat_template) for q in questions]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    answers: list[str] = [""] * len(encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_token_ids(model, tokenizer)
    was_training = model.training
    model.eval()
    try:
        for start in progress(range(0, len(order), batch_size), description):
            batch = [order[k] for k in range(start, min(start + batch_size, len(order)))]
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i]
                input_ids[row, width - len(ids):] = torch.tensor(ids)
                attention[row, width - len(ids):] = 1
            output = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device),
                max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id,
                eos_token_id=stops or None,
            )
            for row, i in enumerate(batch):
                text = tokenizer.decode(until_stop(output[row, width:].tolist(), stops), skip_special_tokens=True)
                answers[i] = clean_generation(text) if first_line_only else text.strip()
    finally:
        model.train(was_training)
    return answers


def stop_token_ids(model, tokenizer) -> list[int]:
    """The ids that end an answer: the tokenizer's EOS first, then the generation config's EOS id(s)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [tokenizer.eos_token_id, *(configured if isinstance(configured, (list, tuple)) else [configured])]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def until_stop(ids: list[int], stops: list[int]) -> list[int]:
    """`ids` up to (not including) the first stop id."""
    return next((ids[:k] for k, token in enumerate(ids) if token in stops), ids)
