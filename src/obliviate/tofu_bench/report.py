"""report.html for the TOFU benchmark: obliviate's report, its trade-off chart TOFU's, the leaderboard below the
scorecards."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from obliviate.tofu_bench.leaderboard import UTILITY_SHARE, Row, table_cells, table_header
from obliviate.io import atomic_write_text
from obliviate.report.build import build_report
from obliviate.report.document import Chart, Section, Table
from obliviate.report.entries import load_entries
from obliviate.report.html import render_html
from obliviate.report.plots import colour, png_bytes

FLOOR = 1e-30  # forget quality is a p-value: drawn on a log axis, with 0 shown at this floor
MARKERS = {"retain model": "*", "full model": "X"}


def tradeoff_chart(rows: list[Row], retain: Row) -> Chart:
    """Model utility (x) against forget quality (y, log), one point per method; retain and full models marked."""
    figure = Figure(figsize=(8, 5.5), layout="constrained")
    axes = figure.add_subplot()
    names_at: dict[tuple[float, float], list[str]] = {}  # rows with equal scores share one label
    for position, row in enumerate(rows):
        utility, quality = row.metrics["model_utility"], row.metrics["forget_quality"]
        if utility is None or quality is None:
            continue
        point = (utility, max(quality, FLOOR))
        marker = MARKERS.get(row.name, "o")
        axes.scatter(*point, s=160 if row.name in MARKERS else 70, marker=marker,
                     color="#000000" if row.name in MARKERS else colour(position), zorder=3 + (row.name in MARKERS))
        names_at.setdefault(point, []).append(row.name)
    for point, names in names_at.items():
        axes.annotate(", ".join(names), point, xytext=(6, 4), textcoords="offset points", fontsize=8)
    if retain.metrics["model_utility"] is not None:
        axes.axvline(UTILITY_SHARE * retain.metrics["model_utility"], color="#888888", linestyle="--", linewidth=1)
    axes.set_yscale("log")
    axes.set_xlabel("model utility")
    axes.set_ylabel("forget quality (KS p-value vs the retain model)")
    axes.grid(alpha=0.3)
    caption = (f"★ retain model (forget quality 1 by construction), ✕ full model (never unlearned); dashed: "
               f"{UTILITY_SHARE} × the retain model's utility. Up and right is better; a forget quality of 0 is drawn "
               f"at {FLOOR:.0e}.")
    return Chart("tofu_tradeoff", "Model utility vs forget quality", caption, png_bytes(figure))


def leaderboard_table(rows: list[Row]) -> Table:
    return Table(table_header(), [table_cells(row) for row in rows], title="Leaderboard")


def write_tofu_report(out: Path, title: str, intro: str, reference_rows: list[Row], methods: list[Row]) -> Path:
    """`reference_rows` = [retain model, full model]; every row's eval JSON goes into the report below."""
    rows = reference_rows + methods
    report = build_report(load_entries([row.eval_path for row in rows]), title,
                          tradeoff=tradeoff_chart(rows, reference_rows[0]))
    report.sections.insert(1, Section("leaderboard", "Leaderboard", intro, tables=[leaderboard_table(rows)]))
    return atomic_write_text(out, render_html(report))
