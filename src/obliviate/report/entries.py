"""Reading report inputs: eval JSONs (from `obliviate eval`) and run directories (from `obliviate unlearn`).

Every eval JSON becomes one `ReportEntry`, a column of the report. A run directory contributes one
entry per `eval/*.json` (the `before*` ones first, then by name), or a single metric-less entry when
it holds no evaluation yet, so its summary and loss curve still appear. An eval JSON given directly
that lives in `<run>/eval/` is attached to its run as well.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from obliviate.errors import DataError
from obliviate.report.metrics import MetricInfo, MetricKey, is_number


@dataclass
class RunInfo:
    """What `obliviate unlearn` recorded in `run.json` (and `attacks.json`, when present)."""

    path: Path
    method: str | None = None
    model: str | None = None
    forget: str | None = None
    retain: str | None = None
    steps: int | None = None
    wall_seconds: float | None = None
    peak_memory_mb: float | None = None
    final_losses: dict[str, float] = field(default_factory=dict)
    loss_log: list[dict[str, Any]] = field(default_factory=list)
    attacks: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ReportEntry:
    """One evaluated model: a column of the before/after table and a bar of every chart."""

    label: str
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # suite -> metric -> value
    meanings: dict[str, dict[str, dict]] = field(default_factory=dict)  # suite -> metric -> {"axis", "better"}
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    method: str | None = None
    model: str | None = None
    seconds: float | None = None
    source: Path | None = None
    run: RunInfo | None = None
    reference: Path | None = None  # the reference eval (the retain model's) this eval was compared with

    def metric_values(self) -> dict[MetricKey, float]:
        return {MetricKey(suite, name, self._declared(suite, name)): value
                for suite, values in self.metrics.items() for name, value in values.items()}

    def _declared(self, suite: str, name: str) -> MetricInfo | None:
        meaning = self.meanings.get(suite, {}).get(name)
        return None if meaning is None else MetricInfo(meaning["axis"], meaning.get("better", ""))


def load_entries(paths: Iterable[str | os.PathLike]) -> list[ReportEntry]:
    """Load eval JSONs and run directories, in the order given; raises DataError naming a bad file."""
    entries: list[ReportEntry] = []
    for path in map(Path, paths):
        if path.is_dir():
            entries.extend(_load_run_dir(path))
        elif path.is_file():
            run_dir = path.parent.parent
            run = _load_run(run_dir) if path.parent.name == "eval" and (run_dir / "run.json").is_file() else None
            entries.append(_load_eval(path, run))
        else:
            raise DataError(path, "no such file or directory")
    return with_unique_labels(entries)


def with_unique_labels(entries: list[ReportEntry]) -> list[ReportEntry]:
    """Qualify repeated labels (two runs' `after`) with their run or folder name, then number them."""
    def qualified(entry: ReportEntry) -> str:
        where = entry.run.name if entry.run else entry.source.parent.name if entry.source else ""
        return f"{entry.label} ({where})" if where else entry.label

    labels = [entry.label for entry in entries]
    labels = [qualified(entry) if labels.count(entry.label) > 1 else entry.label for entry in entries]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if labels.count(label) == 1 else f"{label} #{seen[label]}")
    return [dataclasses.replace(entry, label=label) for entry, label in zip(entries, unique)]


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot be read ({err.__class__.__name__})") from err
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON (line {err.lineno}: {err.msg})") from err
    if not isinstance(document, dict):
        raise DataError(path, "expected a JSON object")
    return document


def _numeric_leaves(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested metric objects to `a/b` names, keeping only finite numbers (counts stay ints)."""
    flat: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update(_numeric_leaves(value, f"{prefix}{name}/"))
        elif is_number(value):
            flat[f"{prefix}{name}"] = value if isinstance(value, float) else int(value)
    return flat


def _normalise_metrics(path: Path, document: dict[str, Any]) -> dict[str, dict[str, float]]:
    metrics = document.get("metrics")
    if not isinstance(metrics, dict):
        raise DataError(path, "no \"metrics\" object: is this an `obliviate eval` output?", field="metrics")
    by_suite: dict[str, dict[str, float]] = {}
    for suite, values in metrics.items():
        if isinstance(values, dict):
            by_suite.setdefault(suite, {}).update(_numeric_leaves(values))
        elif is_number(values):  # a metric stored directly under "metrics" belongs to the file's suite
            by_suite.setdefault(str(document.get("suite") or ""), {}).update(_numeric_leaves({suite: values}))
    return by_suite


def _rows(path: Path, document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = document.get(name) or []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DataError(path, "expected a list of objects", field=name)
    return rows


def _load_eval(path: Path, run: RunInfo | None) -> ReportEntry:
    document = _read_json_object(path)
    seconds = document.get("seconds")
    reference = document.get("reference")
    return ReportEntry(
        label=str(document.get("label") or path.stem),
        metrics=_normalise_metrics(path, document),
        meanings=_meanings(path, document),
        per_sample=_rows(path, document, "per_sample"),
        examples=_rows(path, document, "examples"),
        method=run.method if run else document.get("method"),
        model=document.get("model") or (run.model if run else None),
        seconds=float(seconds) if is_number(seconds) else None,
        source=path,
        run=run,
        reference=Path(reference).resolve() if isinstance(reference, str) and reference else None,
    )


def _meanings(path: Path, document: dict[str, Any]) -> dict[str, dict[str, dict]]:
    """The eval's declared meanings (suite -> metric -> {"axis", "better"}); {} for an eval written without them."""
    meanings = document.get("meanings") or {}
    valid = isinstance(meanings, dict) and all(
        isinstance(declared, dict) and all(isinstance(m, dict) and "axis" in m for m in declared.values())
        for declared in meanings.values())
    if not valid:
        raise DataError(path, "expected an object of suite -> metric -> {axis, better}", field="meanings")
    return meanings


def _load_run(run_dir: Path) -> RunInfo:
    path = run_dir / "run.json"
    document = _read_json_object(path)
    loss_log = _rows(path, document, "loss_log")
    final_losses = document.get("final_losses") or {}
    if not isinstance(final_losses, dict):
        raise DataError(path, "expected an object", field="final_losses")
    attacks_path = run_dir / "attacks.json"
    attacks = _read_json_object(attacks_path).get("attacks", {}) if attacks_path.is_file() else {}
    if not isinstance(attacks, dict) or not all(isinstance(result, dict) for result in attacks.values()):
        raise DataError(attacks_path, "expected an object of attack name -> {recovered, floor, upper}", field="attacks")

    def text(name: str) -> str | None:
        value = document.get(name)
        return None if value is None else str(value)

    def number(name: str) -> float | None:
        value = document.get(name)
        return value if is_number(value) else None

    return RunInfo(
        path=run_dir,
        method=text("method"),
        model=text("model"),
        forget=text("forget"),
        retain=text("retain"),
        steps=number("steps"),
        wall_seconds=number("wall_seconds"),
        peak_memory_mb=number("peak_memory_mb"),
        final_losses=_numeric_leaves(final_losses),
        loss_log=[row for row in loss_log if is_number(row.get("step")) and is_number(row.get("loss"))],
        attacks={name: _numeric_leaves(result) for name, result in attacks.items()},
    )


def _eval_order(path: Path) -> tuple[bool, str]:
    return (not path.stem.startswith("before"), path.stem)


def _load_run_dir(run_dir: Path) -> list[ReportEntry]:
    if not (run_dir / "run.json").is_file():
        raise DataError(run_dir, "not a run directory (no run.json)")
    run = _load_run(run_dir)
    eval_paths = sorted((run_dir / "eval").glob("*.json"), key=_eval_order)
    if not eval_paths:
        return [ReportEntry(label=run.name, method=run.method, model=run.model, run=run)]
    return [_load_eval(path, run) for path in eval_paths]


def runs_of(entries: Iterable[ReportEntry]) -> list[RunInfo]:
    """The distinct runs behind the entries, in order of first appearance."""
    runs: dict[Path, RunInfo] = {}
    for entry in entries:
        if entry.run is not None:
            runs.setdefault(entry.run.path.resolve(), entry.run)
    return list(runs.values())
