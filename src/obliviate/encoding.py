"""Token ids for training and scoring: a plain text encoded for language modelling, and encoded sequences padded
into a batch. Training (`obliviate.unlearn`, the tiny model) and scoring (`obliviate.eval`) encode through here,
so a text is the same ids everywhere; a question and its answer are encoded by `obliviate.prompts.encode_qa`.
"""

from __future__ import annotations

import torch

from obliviate.prompts import IGNORE_INDEX, EncodedQA


def encode_text(tokenizer, text: str, max_length: int = 512) -> EncodedQA:
    """A plain text: every token after the first is labelled."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = ids + [tokenizer.eos_token_id]
    ids = ids[:max_length]
    return EncodedQA(ids, [IGNORE_INDEX] + ids[1:])


def right_padded(encoded: list[EncodedQA], rows: list[int], pad_id: int):
    """(input_ids, labels, attention_mask) of the chosen sequences, padded on the right."""
    width = max(len(encoded[i].input_ids) for i in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, i in enumerate(rows):
        n = len(encoded[i].input_ids)
        input_ids[row, :n] = torch.tensor(encoded[i].input_ids)
        labels[row, :n] = torch.tensor(encoded[i].labels)
        attention[row, :n] = 1
    return input_ids, labels, attention


def pad_id_of(tokenizer) -> int:
    """The id batches are padded with: the tokenizer's pad token, else its EOS token, else 0."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def left_padded(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of token sequences padded on the left, so that they all end at the last column
    (what generation continues from)."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids):] = 1
    return input_ids, attention
