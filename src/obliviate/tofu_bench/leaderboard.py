"""Leaderboard rows from eval JSONs, the sweep's choice of a method's best point, and leaderboard.md/json."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path

from obliviate.errors import ObliviateError
from obliviate.io import atomic_write_json, atomic_write_text
from obliviate.report.metrics import format_number

# (leaderboard column, suite, metric in the eval JSON); PrivLeak from Min-K% Prob, as in MUSE.
COLUMNS = (
    ("forget_quality", "tofu", "forget_quality"),
    ("model_utility", "tofu", "model_utility"),
    ("forget_probability", "tofu", "forget/probability"),
    ("forget_rouge_l", "tofu", "forget/rouge_l_recall"),
    ("forget_truth_ratio", "tofu", "forget/truth_ratio"),
    ("privleak", "mia", "privleak_min_k"),
)
UTILITY_SHARE = 0.9
CRITERION = (f"highest forget quality among the points whose model utility is at least {UTILITY_SHARE} × the "
             "retain model's; if none is, the highest model utility")


@dataclass
class Row:
    """One leaderboard line: a method's chosen point, or the full / retain model."""

    name: str
    metrics: dict[str, float | None]
    wall_seconds: float  # unlearning (methods) or training (full / retain model)
    eval_seconds: float
    hyperparameters: dict[str, object] = field(default_factory=dict)
    eval_path: str = ""


def row_from_eval(name: str, document: dict, wall_seconds: float, eval_path: Path,
                  hyperparameters: dict | None = None) -> Row:
    metrics = {column: document["metrics"].get(suite, {}).get(metric) for column, suite, metric in COLUMNS}
    return Row(name, metrics, round(wall_seconds, 1), document["seconds"], hyperparameters or {}, str(eval_path))


def parse_sweep(options: list[str]) -> dict[str, list[str]]:
    """`lr=1e-4,5e-4` options (or one `lr=1e-4,5e-4,epochs=2,5`): a value without `=` extends the last key."""
    grid: dict[str, list[str]] = {}
    key = None
    for piece in (p.strip() for option in options for p in option.split(",")):
        if "=" in piece:
            key, _, piece = (part.strip() for part in piece.partition("="))
            if not key or key in grid:
                raise ObliviateError(f"--sweep: {'an empty key' if not key else f'{key} given twice'}")
            grid[key] = []
        if key is None or not piece:
            raise ObliviateError(f"--sweep {','.join(options)}: expected KEY=VALUE[,VALUE…]")
        grid[key].append(piece)
    return grid


def sweep_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def _value(row: Row, column: str) -> float:
    value = row.metrics[column]
    return -1.0 if value is None else value


def best_method(rows: list[Row], retain_utility: float) -> Row | None:
    """The row with the best forget quality at model utility ≥ UTILITY_SHARE × the retain model's, if any."""
    qualified = [row for row in rows if _value(row, "model_utility") >= UTILITY_SHARE * retain_utility]
    return max(qualified, key=lambda row: _value(row, "forget_quality"), default=None)


def choose(trials: list[Row], retain_utility: float) -> Row:
    """The sweep point the criterion picks (CRITERION)."""
    return best_method(trials, retain_utility) or max(trials, key=lambda row: _value(row, "model_utility"))


def _settings(row: Row) -> str:
    return ", ".join(f"{key}={value}" for key, value in row.hyperparameters.items())


def table_header() -> list[str]:
    """The leaderboard's columns, in leaderboard.md and report.html alike."""
    return ["model", *(column for column, _, _ in COLUMNS), "wall s", "eval s"]


def table_cells(row: Row) -> list[str]:
    return [row.name, *(format_number(row.metrics[c]) for c, _, _ in COLUMNS), f"{row.wall_seconds:.1f}",
            f"{row.eval_seconds:.1f}"]


def best_sentence(best: Row | None, retain: Row) -> str:
    threshold = format_number(UTILITY_SHARE * (retain.metrics["model_utility"] or 0))
    if best is None:
        return f"No method keeps model utility ≥ {UTILITY_SHARE} × the retain model's ({threshold})."
    return (f"Best forget quality at model utility ≥ {UTILITY_SHARE} × the retain model's ({threshold}): "
            f"**{best.name}** (forget quality {format_number(best.metrics['forget_quality'])}, "
            f"model utility {format_number(best.metrics['model_utility'])}).")


def markdown(title: str, facts: list[str], reference_rows: list[Row], methods: list[Row], best: Row | None,
             swept: bool) -> str:
    header = [*table_header(), "hyper-parameters"]
    lines = [f"# {title}", "", *(f"- {fact}" for fact in facts), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in reference_rows + methods:
        lines.append("| " + " | ".join([*table_cells(row), _settings(row)]) + " |")
    lines += ["", best_sentence(best, reference_rows[0])]
    if swept:
        lines += ["", f"Sweep: each method's row is its point with the {CRITERION}."]
    lines += ["", "wall s: training (full / retain model) or unlearning (methods); eval s: the tofu + mia evaluation. "
              "PrivLeak from Min-K% Prob AUC, forget vs holdout, against the retain model's (0 is ideal)."]
    return "\n".join(lines) + "\n"


def write_leaderboard(out: Path, title: str, facts: list[str], reference_rows: list[Row], methods: list[Row],
                      trials: dict[str, list[Row]], swept: bool) -> None:
    """leaderboard.md and leaderboard.json; `reference_rows` = [retain model, full model]."""
    retain_utility = reference_rows[0].metrics["model_utility"] or 0
    best = best_method(methods, retain_utility)
    atomic_write_json(out / "leaderboard.json", {
        "title": title, "facts": facts, "criterion": CRITERION if swept else None,
        "reference": [asdict(row) for row in reference_rows], "methods": [asdict(row) for row in methods],
        "best_at_utility": best.name if best else None, "utility_threshold": UTILITY_SHARE * retain_utility,
        "sweep": {name: [asdict(row) for row in rows] for name, rows in trials.items()} if swept else None,
    })
    atomic_write_text(out / "leaderboard.md", markdown(title, facts, reference_rows, methods, best, swept))
