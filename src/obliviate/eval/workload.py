"""What an evaluation needs from a model, gathered first and then computed in as few passes as possible.

Suites declare requests on a `Workload` (score this answer, generate an answer to that question);
`run_workload` deduplicates them across every suite of the run and makes one scoring call over all
(question, answer) pairs, one over all texts, one generation call per generation setting, and — for
reverse perplexity — one scoring call of the generations under the original model.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

from obliviate.eval.generation import generate_answers
from obliviate.eval.scoring import SequenceScore, score_answers, score_texts

DEFAULT_MAX_NEW_TOKENS = 32


@dataclass(frozen=True)
class Generation:
    """A greedy answer to `question`, with its generation settings."""

    question: str
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    first_line_only: bool = True


@dataclass
class Workload:
    # dicts as ordered sets: a request made twice is computed once
    pairs: dict[tuple[str, str], None] = field(default_factory=dict)
    texts: dict[str, None] = field(default_factory=dict)
    generations: dict[Generation, None] = field(default_factory=dict)
    scored_by_original: dict[Generation, None] = field(default_factory=dict)

    def score(self, question: str, answer: str) -> None:
        self.pairs[(question, answer)] = None

    def score_text(self, text: str) -> None:
        self.texts[text] = None

    def generate(self, generation: Generation) -> None:
        self.generations[generation] = None

    def score_generation_by_original(self, generation: Generation) -> None:
        """Generate with the evaluated model, then score (question, generation) under the original model."""
        self.generate(generation)
        self.scored_by_original[generation] = None


@dataclass
class Results:
    pair_scores: dict[tuple[str, str], SequenceScore]
    text_scores: dict[str, SequenceScore]
    generations: dict[Generation, str]
    original_scores: dict[Generation, SequenceScore]
    seconds: dict[str, float] = field(default_factory=dict)  # per pass: where the evaluation's time went

    def score(self, question: str, answer: str) -> SequenceScore:
        return self.pair_scores[(question, answer)]

    def text_score(self, text: str) -> SequenceScore:
        return self.text_scores[text]

    def generation(self, generation: Generation) -> str:
        return self.generations[generation]

    def original_score(self, generation: Generation) -> SequenceScore:
        return self.original_scores[generation]


def run_workload(workload: Workload, model, tokenizer, original=None, batch_size: int = 32) -> Results:
    """Compute every request of `workload`; `original` is a (model, tokenizer) pair, needed for reverse perplexity.
    `Results.seconds` says how long each pass took."""
    pairs, texts = list(workload.pairs), list(workload.texts)
    clock = _PassClock()
    with clock("scoring answers"):
        pair_scores = score_answers(model, tokenizer, pairs, batch_size=batch_size) if pairs else []
    with clock("scoring texts"):
        text_scores = score_texts(model, tokenizer, texts, batch_size=batch_size) if texts else []
    with clock("generating"):
        generations = _generate_all(list(workload.generations), model, tokenizer, batch_size)
    original_scores = {}
    if workload.scored_by_original:
        if original is None:
            raise ValueError("the workload scores generations under the original model, but none was given")
        requests = list(workload.scored_by_original)
        with clock("scoring generations (original model)"):
            scored = score_answers(*original, [(g.question, generations[g]) for g in requests],
                                   batch_size=batch_size, description="scoring generations (original model)")
        original_scores = dict(zip(requests, scored))
    return Results(dict(zip(pairs, pair_scores)), dict(zip(texts, text_scores)), generations, original_scores,
                   clock.seconds)


class _PassClock:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def _generate_all(requests: list[Generation], model, tokenizer, batch_size: int) -> dict[Generation, str]:
    by_setting: dict[tuple[int, bool], list[Generation]] = defaultdict(list)
    for request in requests:
        by_setting[(request.max_new_tokens, request.first_line_only)].append(request)
    answers = {}
    for (max_new_tokens, first_line_only), group in by_setting.items():
        texts = generate_answers(model, tokenizer, [g.question for g in group], max_new_tokens=max_new_tokens,
                                 batch_size=batch_size, first_line_only=first_line_only)
        answers.update(zip(group, texts))
    return answers
