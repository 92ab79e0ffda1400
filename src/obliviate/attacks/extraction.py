"""The measure most attacks share: does the model's greedy continuation of a prompt start with the answer?

It is read from the one teacher-forced scoring pass: the answer tokens (no end-of-sequence) are
labelled after the prompt, and greedy decoding reproduces them exactly when every one is the
argmax given the ones before. Prompts are token ids, so attacks can
wrap the question in any text, or put raw text (a biography sentence) in front of the answer.
"""

from __future__ import annotations

from obliviate.encoding import pad_id_of
from obliviate.eval.scoring import score_encoded
from obliviate.data import QARecord
from obliviate.prompts import IGNORE_INDEX, EncodedQA, continuation_ids, formatted_prompt_ids, prompt_text


def qa_prompt(tokenizer, question: str, lead: str = "") -> list[int]:
    """The question in the model's QA format, then `lead` (text put in the answer's mouth)."""
    return formatted_prompt_ids(tokenizer, question, lead=lead)


def context_prompt(tokenizer, context: str, question: str) -> list[int]:
    """Raw `context` text, then the question in the QA format."""
    return formatted_prompt_ids(tokenizer, question, context=context)


def demonstrations(tokenizer, examples: list[QARecord]) -> str:
    """Questions in the model's QA format, each followed by its answer: worked examples to put first."""
    return "".join(f"{prompt_text(tokenizer, r.question)} {r.answer}\n" for r in examples)


def text_prompt(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def encode_continuation(tokenizer, prompt: list[int], answer: str) -> EncodedQA:
    target = continuation_ids(tokenizer, prompt, answer)
    return EncodedQA(prompt + target, [IGNORE_INDEX] * len(prompt) + target)


def extracted(model, tokenizer, prompts: list[list[int]], answers: list[str], batch_size: int = 32) -> list[bool]:
    """For each prompt, whether greedy decoding continues it with its answer."""
    encoded = [encode_continuation(tokenizer, p, a) for p, a in zip(prompts, answers)]
    scores = score_encoded(model, encoded, batch_size, pad_id_of(tokenizer), description="attack probes")
    return [s.n_tokens > 0 and bool(s.argmax_correct.all()) for s in scores]


def any_extracted(model, tokenizer, prompt_sets: list[list[list[int]]], answers: list[str],
                  batch_size: int = 32) -> list[bool]:
    """Per answer, whether at least one of its prompts extracts it (the attacker tries them all)."""
    flat = [(p, a) for prompts, a in zip(prompt_sets, answers) for p in prompts]
    hits = iter(extracted(model, tokenizer, [p for p, _ in flat], [a for _, a in flat], batch_size))
    return [any([next(hits) for _ in prompts]) for prompts in prompt_sets]


def fraction(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else float("nan")
