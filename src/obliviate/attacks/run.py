"""`run_attacks`: every chosen attack on the unlearned model and its two controls, as one JSON document.

    {"attacks": {"<attack>": {"recovered": x, "floor": y, "upper": z, "n": n, "metric": "<metric>"}},
     "metrics": {"<metric>": "<what it counts>"},
     "models": {"attacked": path, "upper": path, "floor": path or null},
     "settings": {...}, "details": {"<attack>": {"<role>": {...}}}, "seconds": s}

`attacks` is what reports read (`<run_dir>/attacks.json`): recovered on the unlearned model,
floor on the retain model (null without one), upper on the model before unlearning. Undefined
numbers are null.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

from obliviate.attacks.context import AttackContext, AttackSettings, Role, Subject
from obliviate.attacks.registry import METRICS, get_attacks
from obliviate.data import QARecord
from obliviate.io import atomic_write_json
from obliviate.progress import progress
from obliviate.world import World

ROLE_FIELDS: dict[Role, str] = {"attacked": "recovered", "floor": "floor", "upper": "upper"}


def run_attacks(model: str | os.PathLike, original: str | os.PathLike, retain_model: str | os.PathLike | None,
                forget_records: list[QARecord], attacks: list[str] | str | None = None, *,
                world: str | os.PathLike | World | None = None, settings: AttackSettings | None = None,
                out: str | os.PathLike | None = None) -> dict:
    """Attack the unlearned `model` (a model directory), with `original` and `retain_model` as controls.

    `attacks`: attack or family names (None: all); `world`: the world the facts come from (needed
    by fill_blank, unrelated_context, in_context, linear_probe). Writes the document to `out`
    atomically when given, and returns it.
    """
    start = time.monotonic()
    chosen = get_attacks(attacks)
    settings = settings or AttackSettings()
    paths: dict[Role, str | os.PathLike | None] = {"attacked": model, "upper": original, "floor": retain_model}
    subjects = {role: Subject.load(role, path) for role, path in paths.items() if path is not None}
    context = AttackContext(list(forget_records), settings, subjects["upper"],
                            World(world) if isinstance(world, (str, os.PathLike)) else world)
    results, details = {}, {}
    for attack in progress(chosen, "attacks"):
        measured = {role: attack.run(subject, context) for role, subject in subjects.items()}
        results[attack.name] = {**{field: _number(measured[role].value) if role in measured else None
                                   for role, field in ROLE_FIELDS.items()},
                                "n": measured["attacked"].n, "metric": attack.metric}
        details[attack.name] = {role: m.details for role, m in measured.items() if m.details}
    document = {"attacks": results, "metrics": {a.metric: METRICS[a.metric] for a in chosen},
                "models": {role: None if path is None else str(path) for role, path in paths.items()},
                "settings": dataclasses.asdict(settings), "details": details,
                "seconds": round(time.monotonic() - start, 2)}
    if out is not None:
        atomic_write_json(Path(out), document)
    return document


def _number(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(value) else None
