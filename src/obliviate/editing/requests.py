"""Edit requests and how they become tokens: the question prompt and the position whose key is edited.

That position is the subject's last token (MEMIT's and AlphaEdit's choice), every token of the
subject (for small models that spread an entity over all of its tokens), or the prompt's last token. Prompts go through `obliviate.prompts`, so an edited question is presented to the model
exactly as training, scoring and generation present it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from obliviate.data import QARecord
from obliviate.errors import ObliviateError
from obliviate.prompts import IGNORE_INDEX, answer_ids, prompt_ids, prompt_text


@dataclass(frozen=True)
class EditRequest:
    """Make the model answer `question` with `target`; the edit keys on `subject`, a span of the question."""

    question: str
    subject: str
    target: str

    def __post_init__(self):
        if not self.subject or self.subject not in self.question:
            raise ObliviateError(f"edit subject {self.subject!r} does not occur in the question {self.question!r}")


def request_from_record(record: QARecord, target: str) -> EditRequest:
    """The request answering `record.question` with `target`, keyed on its `subject` (else its `entity`)."""
    subject = record.subject or record.entity
    if not subject:
        raise ObliviateError(f"the record {record.question!r} has no 'subject' or 'entity' field to locate the edit")
    return EditRequest(record.question, subject, target)


def target_ids(tokenizer, target: str) -> list[int]:
    """The tokens of an answer `target`; an added token (such as `<unlearn_0>`) is that single token."""
    if target in tokenizer.get_added_vocab():
        return [tokenizer.convert_tokens_to_ids(target)]
    return answer_ids(tokenizer, target, add_eos=False)


KeyToken = Literal["subject_last", "subject_all", "prompt_last"]


@dataclass(frozen=True)
class KeyedPrompt:
    input_ids: list[int]
    key_positions: tuple[int, ...]  # the positions whose keys are edited, in order


def question_prompt(tokenizer, request: EditRequest, prefix: str = "",
                    key_token: KeyToken = "subject_last") -> KeyedPrompt:
    """The prompt for `request.question`, preceded inside the question by a context `prefix` if given."""
    asked = f"{prefix}. {request.question}" if prefix else request.question
    text = prompt_text(tokenizer, asked)
    start = text.find(asked)
    if start < 0:
        raise ObliviateError(f"the chat template changed the question {asked!r}: cannot locate its subject")
    subject_start = start + len(asked) - len(request.question) + request.question.index(request.subject)
    return _keyed(tokenizer, text, prompt_ids(tokenizer, asked), subject_start, len(request.subject), key_token)


def context_batch(tokenizer, request: EditRequest, contexts: list[str], key_token: KeyToken, device,
                  target: list[int] | None = None) -> PromptBatch:
    """The request's question after each context prefix, as one batch (see `prompt_batch`)."""
    prompts = [question_prompt(tokenizer, request, prefix, key_token) for prefix in contexts]
    if len({len(p.key_positions) for p in prompts}) > 1:
        raise ObliviateError(f"the subject {request.subject!r} is split into different numbers of tokens after "
                             "different context prefixes")
    return prompt_batch(prompts, tokenizer.pad_token_id, device, target)


def subject_statement(tokenizer, subject: str, key_token: KeyToken = "subject_last") -> KeyedPrompt:
    """"{subject} is a": the plain-text prompt whose next-token distribution the edit should keep."""
    text = f"{subject} is a"
    return _keyed(tokenizer, text, tokenizer(text)["input_ids"], 0, len(subject), key_token)


def _keyed(tokenizer, text: str, ids: list[int], subject_start: int, subject_length: int,
           key_token: KeyToken) -> KeyedPrompt:
    if key_token == "prompt_last":
        return KeyedPrompt(ids, (len(ids) - 1,))
    last = _token_index(tokenizer, text, ids, subject_start + subject_length - 1)
    first = last if key_token == "subject_last" else _token_index(tokenizer, text, ids, subject_start)
    return KeyedPrompt(ids, tuple(range(first, last + 1)))


def _token_index(tokenizer, text: str, ids: list[int], char: int) -> int:
    """The position in `ids` (the tokens of `text`, maybe after special tokens) of the token holding `char`."""
    if not tokenizer.is_fast:
        raise ObliviateError("model editing needs a fast (Rust) tokenizer to locate the subject's tokens")
    encoding = tokenizer(text, add_special_tokens=False)
    return encoding.char_to_token(char) + len(ids) - len(encoding["input_ids"])


@dataclass
class PromptBatch:
    """Right-padded prompts (+ optional appended target tokens) and their key positions, flattened:
    key i is at (key_rows[i], key_positions[i])."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor  # the appended target tokens, IGNORE_INDEX elsewhere
    key_rows: torch.Tensor
    key_positions: torch.Tensor
    last_positions: torch.Tensor  # (batch,) each row's last real token

    @property
    def inputs(self) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def prompt_batch(prompts: list[KeyedPrompt], pad_id: int, device, target: list[int] | None = None) -> PromptBatch:
    """The prompts padded on the right (positions do not move); with `target`, the prompt is followed by
    all of it but its last token, and the labels make position t predict target token t."""
    target = target or []
    rows = [p.input_ids + target[:-1] for p in prompts]
    width = max(map(len, rows))
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, prompt) in enumerate(zip(rows, prompts)):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        attention[row, :len(ids)] = 1
        # labels[t] is the token predicted at position t (not the HF shifted convention)
        first = len(prompt.input_ids) - 1
        labels[row, first:first + len(target)] = torch.tensor(target, dtype=torch.long)
    key_rows = [row for row, p in enumerate(prompts) for _ in p.key_positions]
    key_positions = [position for p in prompts for position in p.key_positions]
    return PromptBatch(input_ids.to(device), attention.to(device), labels.to(device),
                       torch.tensor(key_rows, device=device), torch.tensor(key_positions, device=device),
                       torch.tensor([len(ids) - 1 for ids in rows], device=device))
