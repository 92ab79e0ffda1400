"""The suite registry: each suite lives in its own module and registers with `@register_suite("name")`.

A suite loads its data and declares every score and generation it needs on a shared `Workload`
(`plan`); after the run has computed them all at once it turns the results into metrics and
per-sample rows (`compute`). Metric names inside a suite are "<set>/<metric>" for per-set
numbers and plain names for suite-level ones (forget_quality, model_utility, auc_loss, …).
Each suite declares what its metrics mean (`forget_sets`, `metric_meanings`; obliviate.eval.meaning), and the
eval JSON carries the declarations beside the values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, ClassVar, Protocol, TypeVar

from obliviate.errors import ObliviateError
from obliviate.eval.meaning import OTHER, Meaning, named_sets, set_meaning
from obliviate.eval.reference import Reference
from obliviate.eval.workload import Results, Workload
from obliviate.world import World, recorded_world

EXAMPLES_PER_SET = 3
LM_EVAL_PREFIX = "lm_eval:"


@dataclass
class SuiteContext:
    """What every suite of one run shares: data options, the world, the reference eval, the limit."""

    data: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    reference: Reference | None = None
    world_source: str | os.PathLike | World | None = None
    model_dir: Path | None = None  # where a default world may be recorded (base_eval.json)
    refusals: list[str] | None = None
    model: object = None
    tokenizer: object = None
    batch_size: int = 32

    def limited(self, records: list) -> list:
        return records if self.limit is None else records[: self.limit]

    @cached_property
    def world(self) -> World:
        if isinstance(self.world_source, World):
            return self.world_source
        if self.world_source is not None:
            return World(self.world_source)
        recorded = _recorded_world(self.model_dir)
        if recorded is None:
            raise ObliviateError("this suite evaluates on the synthetic world: pass --world DIR")
        return World(recorded)


def _recorded_world(model_dir: Path | None) -> Path | None:
    named = recorded_world(model_dir)
    return named if named is not None and (named / "world.json").is_file() else None


@dataclass
class SuiteOutput:
    metrics: dict = field(default_factory=dict)
    per_sample: list[dict] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)

    def add_set(self, set_name: str, set_metrics: dict, rows: list[dict]) -> None:
        """A set's metrics as "<set>/<metric>", its rows tagged with set and index, and a few examples."""
        self.metrics |= {f"{set_name}/{name}": value for name, value in set_metrics.items()}
        self.per_sample += [{"set": set_name, "index": index, **row} for index, row in enumerate(rows)]
        self.examples += [{"set": set_name, "question": row["question"], "reference": row.get("answer"),
                           "generation": row["generation"]}
                          for row in rows[:EXAMPLES_PER_SET] if "generation" in row]

    def rows(self, set_name: str) -> list[dict]:
        return [row for row in self.per_sample if row["set"] == set_name]


class EvalSet(Protocol):
    """A named set of samples that requests its scores and generations, then reports metrics and rows."""

    name: str

    def plan(self, workload: Workload) -> None: ...

    def evaluate(self, results: Results) -> tuple[dict, list[dict]]: ...


class Suite:
    """Base class: a suite builds its `sets` from the data; it may extend `compute` with suite-level numbers."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    data_keys: ClassVar[dict[str, str]] = {}  # --data key → what it is; the first is what a bare --data names
    needs_original: ClassVar[bool] = False
    reference_sets: ClassVar[tuple[str, ...]] = ()  # sets whose per-sample rows a reference eval must hold
    reference_metrics: ClassVar[tuple[str, ...]] = ()  # metrics a reference eval must hold
    forget_sets: ClassVar[tuple[str, ...]] = ()  # sets whose knowledge is to be forgotten: their metrics are efficacy
    # What the suite-level metrics mean ("auc_*": every name that starts with "auc_"); a per-set metric
    # "<set>/<measure>" means what its measure says on a set to be forgotten or kept (meaning.set_meaning).
    metric_meanings: ClassVar[dict[str, Meaning]] = {}

    def __init__(self, context: SuiteContext):
        self.context = context
        self.sets: list[EvalSet] = []

    def check_reference(self, reference: Reference) -> None:
        """Fail before any forward pass when `reference` cannot serve this suite's comparisons."""
        sets = {eval_set.name: eval_set for eval_set in self.sets}
        for set_name in self.reference_sets:
            reference.samples(self.name, set_name, sets[set_name].questions)
        for metric in self.reference_metrics:
            reference.metric(self.name, metric)

    def is_forget_set(self, set_name: str) -> bool:
        """One of the suite's forget sets, or a set the evaluation names in `--data forget_sets=…`."""
        return set_name in self.forget_sets or set_name in named_sets(self.context.data)

    def meaning(self, metric: str) -> Meaning:
        for pattern, meaning in self.metric_meanings.items():
            if metric == pattern or (pattern.endswith("*") and metric.startswith(pattern[:-1])):
                return meaning
        if "/" in metric:
            set_name, measure = metric.rsplit("/", 1)
            return set_meaning(measure, self.is_forget_set(set_name))
        return Meaning(OTHER)

    def meanings(self, metrics: dict) -> dict[str, dict]:
        """{metric: {"axis", "better"}} for every metric the suite emitted: the eval JSON's "meanings"."""
        return {name: self.meaning(name).to_json() for name in metrics}

    def plan(self, workload: Workload) -> None:
        for eval_set in self.sets:
            eval_set.plan(workload)

    def compute(self, results: Results) -> SuiteOutput:
        output = SuiteOutput()
        for eval_set in self.sets:
            output.add_set(eval_set.name, *eval_set.evaluate(results))
        return output


_SUITES: dict[str, type[Suite]] = {}
S = TypeVar("S", bound=type[Suite])


def register_suite(name: str) -> Callable[[S], S]:
    def register(cls: S) -> S:
        if name in _SUITES:
            raise ValueError(f"suite '{name}' is registered twice")
        cls.name = name
        _SUITES[name] = cls
        return cls

    return register


def suite_names() -> list[str]:
    return sorted(_SUITES)


def get_suite(name: str) -> type[Suite]:
    """The suite class for `name`; "lm_eval:<task>" builds a bridge to lm-eval-harness."""
    if name.startswith(LM_EVAL_PREFIX):
        from obliviate.eval.lm_eval_bridge import lm_eval_suite

        return lm_eval_suite(name[len(LM_EVAL_PREFIX):])
    if name not in _SUITES:
        raise ObliviateError(f"unknown suite '{name}'; available: {', '.join(suite_names())}, {LM_EVAL_PREFIX}<task>")
    return _SUITES[name]


# Suite modules register themselves when imported.
from obliviate.eval.suites import entity, fluency, general, knowundo, mcq, mia, tofu, world  # noqa: E402,F401
