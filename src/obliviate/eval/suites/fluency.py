"""Fluency of generations: reverse perplexity under the original model and n-gram entropy.

Unlearning that leaves the facts gone but the model babbling has failed; both numbers catch it:
reverse perplexity rises for text the original model finds unlikely, n-gram entropy falls for
repetition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from obliviate.data.readers import read_located_rows
from obliviate.errors import DataError
from obliviate.eval import metrics
from obliviate.eval.meaning import CONTEXT, FLUENCY, HIGHER, LOWER, Meaning
from obliviate.eval.neutral_prompts import NEUTRAL, NEUTRAL_PROMPTS
from obliviate.eval.suites import Suite, SuiteContext, SuiteOutput, _recorded_world, register_suite
from obliviate.eval.workload import Generation, Results, Workload

MAX_NEW_TOKENS = 64
PROMPT_FIELDS = ("question", "prompt", "text")


@dataclass
class FluencySet:
    name: str
    prompts: list[str]

    def _generation(self, prompt: str) -> Generation:
        return Generation(prompt, MAX_NEW_TOKENS, first_line_only=False)

    def plan(self, workload: Workload) -> None:
        for prompt in self.prompts:
            workload.score_generation_by_original(self._generation(prompt))

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]:
        requests = [self._generation(prompt) for prompt in self.prompts]
        generations = [results.generation(request) for request in requests]
        scores = [results.original_score(request) for request in requests]
        rows = [{"question": prompt, "generation": generation, "reverse_perplexity": math.exp(score.mean_nll),
                 "ngram_entropy": metrics.ngram_entropy(generation)}
                for prompt, generation, score in zip(self.prompts, generations, scores)]
        return {"reverse_perplexity": metrics.perplexity(scores),
                "ngram_entropy": metrics.mean_ngram_entropy(generations), "n": len(rows)}, rows


def load_prompts(path: str) -> list[str]:
    """The "question" (or "prompt", or "text") of every row of a file."""
    prompts = []
    for row in read_located_rows(path):
        prompt = next((row.data[name] for name in PROMPT_FIELDS if name in row.data), None)
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(row.source, "expected a non-empty string", record=row.record, field="question")
        prompts.append(prompt)
    return prompts


def _has_world(context: SuiteContext) -> bool:
    return context.world_source is not None or _recorded_world(context.model_dir) is not None


@register_suite("fluency")
class FluencySuite(Suite):
    description = ("fluency of up to 64-token generations: reverse_perplexity under --original (pooled over "
                   "tokens) and ngram_entropy (weighted 2/3-gram entropy, bits)")
    data_keys = {"prompts": "file whose rows' question, prompt or text are the prompts, or 'neutral': "
                            f"{len(NEUTRAL_PROMPTS)} built-in neutral prompts (default: the world's craft questions, "
                            "the neutral prompts when no world is given or recorded)"}
    needs_original = True
    metric_meanings = {"reverse_perplexity": Meaning(FLUENCY, LOWER), "ngram_entropy": Meaning(FLUENCY, HIGHER),
                       "n": Meaning(CONTEXT)}

    def __init__(self, context):
        super().__init__(context)
        source = context.data.get("prompts")
        if source == NEUTRAL or (source is None and not _has_world(context)):
            prompts = list(NEUTRAL_PROMPTS)
        else:
            prompts = load_prompts(source) if source else [r.question for r in context.world.mcq()]
        self.sets = [FluencySet("prompts", context.limited(prompts))]

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        # a single set: its metrics are the suite's
        output.metrics = {name.removeprefix("prompts/"): value for name, value in output.metrics.items()}
        return output
