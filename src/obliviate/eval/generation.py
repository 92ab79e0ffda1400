"""Batched greedy generation with left padding, shared by every generation metric.

An answer ends at the tokenizer's EOS token, the token that training and scoring append to an
answer (`prompts.answer_ids`; a chat model's end of turn, `<|im_end|>` for SmolLM2), or at any
other EOS id the model's generation config lists; nothing generated after it is decoded.

Generation runs in rounds of growing length (`ROUND_LENGTHS`): each round generates for the
answers still open, then rebatches those that have not stopped, their prompt now followed by what
they generated. A batch runs as long as its longest answer, so one answer that never stops no
longer makes 31 finished ones wait 200 steps (most answers stop within 64 tokens; see
docs/tofu.md for the time this saves). Greedy decoding continues where it left off: the only
difference from one long `generate` call is that the prefix is encoded in one forward pass
instead of token by token, equal up to float rounding.
"""

from __future__ import annotations

import torch

from obliviate.encoding import left_padded, pad_id_of
from obliviate.progress import progress
from obliviate.prompts import clean_generation, prompt_ids

ROUND_LENGTHS = (32, 64, 128)  # new tokens generated when each round ends; the last round goes to max_new_tokens


@torch.no_grad()
def generate_answers(model, tokenizer, questions: list[str], max_new_tokens: int = 32, batch_size: int = 64,
                     use_chat_template: bool | None = None, first_line_only: bool = True,
                     description: str = "generating") -> list[str]:
    """Greedy answers to `questions`, in order. Batches are formed from prompts of similar length."""
    prompts = [prompt_ids(tokenizer, q, use_chat_template) for q in questions]
    stops = stop_token_ids(model, tokenizer)
    generated: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        open_answers, done = list(range(len(prompts))), 0
        for end in [n for n in ROUND_LENGTHS if n < max_new_tokens] + [max_new_tokens]:
            order = sorted(open_answers, key=lambda i: len(prompts[i]) + len(generated[i]))
            open_answers = []
            for start in progress(range(0, len(order), batch_size), description):
                batch = order[start:start + batch_size]
                new_tokens = _generate_batch(model, tokenizer, [prompts[i] + generated[i] for i in batch], end - done,
                                             stops)
                for i, tokens in zip(batch, new_tokens):
                    answer = until_stop(tokens, stops)
                    generated[i] += answer
                    if len(answer) == end - done:  # neither stopped nor out of tokens yet
                        open_answers.append(i)
            done = end
            if not open_answers:
                break
    finally:
        model.train(was_training)
    texts = [tokenizer.decode(tokens, skip_special_tokens=True) for tokens in generated]
    return [clean_generation(text) if first_line_only else text.strip() for text in texts]


def _generate_batch(model, tokenizer, sequences: list[list[int]], max_new_tokens: int, stops: list[int]) -> list[list[int]]:
    """The new tokens of each sequence, left-padded into one batch."""
    pad_id = pad_id_of(tokenizer)
    input_ids, attention = left_padded(sequences, pad_id)
    width = input_ids.shape[1]
    device = next(model.parameters()).device
    output = model.generate(
        input_ids=input_ids.to(device), attention_mask=attention.to(device),
        max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id, eos_token_id=stops or None,
    )
    return output[:, width:].tolist()


def stop_token_ids(model, tokenizer) -> list[int]:
    """The ids that end an answer: the tokenizer's EOS first, then the generation config's EOS id(s)."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [tokenizer.eos_token_id, *(configured if isinstance(configured, (list, tuple)) else [configured])]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def until_stop(ids: list[int], stops: list[int]) -> list[int]:
    """`ids` up to (not including) the first stop id."""
    return next((ids[:k] for k, token in enumerate(ids) if token in stops), ids)
