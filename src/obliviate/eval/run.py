"""`evaluate`: run suites on a model with one scoring pass and one generation pass, write the eval JSON.

The eval JSON:

    {"suite": "tofu,mia", "model": "<path or name>", "label": <str or null>,
     "metrics": {"<suite>": {"<metric>": number or null, ...}, ...},
     "meanings": {"<suite>": {"<metric>": {"axis": "efficacy", "better": "lower"}, ...}, ...},
     "per_sample": [{"suite", "set", "index", "question", "answer", <"generation">, <per-sample metrics>}, ...],
     "examples": [{"suite", "set", "question", "reference", "generation"}, ...],
     "tables": {"<suite>": {"<table>": [{column: value}, ...]}},
     "seconds": <float>, "seconds_by_phase": {"loading": s, "scoring answers": s, "generating": s, ..., "metrics": s}}

Numbers that are undefined (an AUC over an empty set, a utility missing a component) are null.
Per-sample rows are complete, so one model's file serves as the reference (`reference=`) of
another's: forget quality, PrivLeak and KnowUnDo success read it. "meanings" says, per metric, what its
suite declares it to mean (obliviate.eval.meaning): the report reads it.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

from obliviate.data import load_refusals
from obliviate.errors import ObliviateError
from obliviate.eval.meaning import FORGET_SETS_KEY
from obliviate.eval.reference import Reference
from obliviate.eval.suites import Suite, SuiteContext, get_suite
from obliviate.eval.workload import Results, Workload, run_workload
from obliviate.io import atomic_write_json
from obliviate.world import World

DEFAULT_BATCH_SIZE = 32


def evaluate(
    model_or_path,
    suites: list[str] | str,
    *,
    tokenizer=None,
    data: dict[str, str] | None = None,
    reference: str | os.PathLike | dict | None = None,
    original=None,
    world: str | os.PathLike | World | None = None,
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    label: str | None = None,
    out: str | os.PathLike | None = None,
) -> dict:
    """Evaluate a model (a path or hub name, or a loaded model with its `tokenizer`) on `suites`.

    `data`: suite data options (`obliviate suites` lists them); `reference`: an eval JSON (path or
    dict) to compare with; `original`: the model before unlearning (path, or (model, tokenizer)),
    which scores generations for reverse perplexity; `world`: the synthetic world (default: the
    one recorded by a tiny base model); `limit`: at most this many samples per set. Writes the
    eval JSON to `out` (atomically) when given, and returns it.
    """
    start = time.monotonic()
    suite_classes = _suite_classes(suites)
    data = dict(data or {})
    _check_options(suite_classes, data, limit, original)
    model_name = _model_name(model_or_path)
    context = SuiteContext(data=data, limit=limit, world_source=world,
                           reference=Reference.load(reference) if reference is not None else None,
                           model_dir=Path(model_name) if Path(model_name).is_dir() else None,
                           refusals=load_refusals(), batch_size=batch_size)
    # Suites load their data before the model, so bad input fails fast.
    instances: list[Suite] = [cls(context) for cls in suite_classes]
    if context.reference is not None:
        for suite in instances:
            suite.check_reference(context.reference)
    context.model, context.tokenizer = _load(model_or_path, tokenizer)
    workload = Workload()
    for suite in instances:
        suite.plan(workload)
    original_pair = _load(original, None) if workload.scored_by_original else None
    loaded = time.monotonic()
    results = run_workload(workload, context.model, context.tokenizer, original_pair, batch_size)

    computing = time.monotonic()
    document = _eval_document(instances, results, model_name, label)
    if isinstance(reference, (str, os.PathLike)):  # the report finds the retain model's entry by it
        document["reference"] = str(Path(reference).resolve())
    document["seconds"] = round(time.monotonic() - start, 2)
    document["seconds_by_phase"] = {"loading": round(loaded - start, 3), **results.seconds,
                                    "metrics": round(time.monotonic() - computing, 3)}
    if out is not None:
        atomic_write_json(out, document)
    return document


def _eval_document(instances: list[Suite], results: Results, model_name: str, label: str | None) -> dict:
    document: dict = {"suite": ",".join(suite.name for suite in instances), "model": model_name, "label": label,
                      "metrics": {}, "meanings": {}, "per_sample": [], "examples": [], "tables": {}}
    for suite in instances:
        output = suite.compute(results)
        document["metrics"][suite.name] = output.metrics
        document["meanings"][suite.name] = suite.meanings(output.metrics)
        document["per_sample"] += [{"suite": suite.name, **row} for row in output.per_sample]
        document["examples"] += [{"suite": suite.name, **example} for example in output.examples]
        if output.tables:
            document["tables"][suite.name] = output.tables
    return _finite_or_null(document)


def _suite_names(suites: list[str] | str) -> list[str]:
    names = [name.strip() for name in (suites.split(",") if isinstance(suites, str) else suites) if name.strip()]
    if not names:
        raise ObliviateError("no suite given; `obliviate suites` lists them")
    return list(dict.fromkeys(names))


def _suite_classes(suites: list[str] | str) -> list[type[Suite]]:
    return [get_suite(name) for name in _suite_names(suites)]


def parse_data_options(options: list[str], suites: list[str] | str) -> dict[str, str]:
    """`--data KEY=VALUE` options; a bare `--data VALUE` names the first data key of the only suite."""
    names = _suite_names(suites)
    known = {key for name in names for key in get_suite(name).data_keys}
    data = {}
    for option in options:
        key, sep, value = option.partition("=")
        if sep and key.strip() in known:
            data[key.strip()] = value.strip()
            continue
        keys = list(get_suite(names[0]).data_keys) if len(names) == 1 else []
        if not keys or (sep and re.fullmatch(r"\w+", key.strip())):
            raise ObliviateError(f"--data {option}: expected KEY=VALUE with KEY one of: "
                                 f"{', '.join(sorted(known)) or 'none'}")
        data[keys[0]] = option
    return data


def _check_options(suite_classes: list[type[Suite]], data: dict[str, str], limit: int | None, original) -> None:
    known = {key for cls in suite_classes for key in cls.data_keys} | {FORGET_SETS_KEY}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ObliviateError(f"data option '{unknown[0]}' is not used by suite(s) "
                             f"{', '.join(cls.name for cls in suite_classes)}; "
                             f"their options: {', '.join(sorted(known)) or 'none'}")
    if limit is not None and limit < 1:
        raise ObliviateError(f"--limit {limit}: must be at least 1")
    needing_original = [cls.name for cls in suite_classes if cls.needs_original]
    if needing_original and original is None:
        raise ObliviateError(f"suite '{needing_original[0]}' needs the original model: pass --original MODEL")


def _model_name(model_or_path) -> str:
    if isinstance(model_or_path, tuple):
        model_or_path = model_or_path[0]
    if isinstance(model_or_path, (str, os.PathLike)):
        return str(model_or_path)
    return str(getattr(model_or_path, "name_or_path", "") or type(model_or_path).__name__)


def _load(model_or_path, tokenizer) -> tuple:
    """(model, tokenizer) from a path or hub name, a loaded model and its tokenizer, or a (model, tokenizer) pair."""
    if isinstance(model_or_path, tuple):
        return model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        from obliviate.models import load_model, load_tokenizer

        return load_model(model_or_path), load_tokenizer(model_or_path)
    if tokenizer is None:
        raise ObliviateError("evaluating a loaded model needs its tokenizer")
    return model_or_path, tokenizer


def _finite_or_null(value):
    """NaN and infinities become None: the eval JSON stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(item) for item in value]
    return value
