"""The report's charts, drawn with matplotlib's Agg canvas (no pyplot, no global state) as PNG bytes.

Every entry keeps one colour in all charts. Metrics whose values all lie in [0, 1] share an axis in
the efficacy and utility bar charts; any other metric (privleak, perplexity, …) gets its own small
panel with its own scale, so one large number cannot flatten the rest.
"""

from __future__ import annotations

import math
import textwrap
from io import BytesIO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from obliviate.report.document import Chart
from obliviate.report.entries import ReportEntry, RunInfo
from obliviate.report.metrics import (
    CONTEXT,
    EFFICACY,
    OTHER,
    UTILITY,
    MetricKey,
    chart_of,
    describe_metric,
    format_number,
    metric_labels,
)
from obliviate.report.scorecard import ORIGINAL, RETAIN
from obliviate.report.scores import Score

# Okabe–Ito: distinguishable with the common forms of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
DPI = 110
FULL_WIDTH = 10.0  # inches: 1100 px, the width of the page's content
MAX_ANNOTATED_BARS = 24  # per row; more and the value labels collide
METRICS_PER_ROW = 8
PANELS_PER_ROW = 4
REFERENCE_MARKERS = {RETAIN: "*", ORIGINAL: "X"}


def colour(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


def png_bytes(figure: Figure) -> bytes:
    buffer = BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _bar_text(value: float) -> str:
    """Two decimals, but a tiny non-zero value (a forget quality of 1e-12) must not read as 0.00."""
    if math.isnan(value):
        return ""
    return f"{value:.0e}" if 0 < abs(value) < 0.005 else f"{value:.2f}"


def _padded_range(values: list[float]) -> tuple[float, float]:
    """Y limits that include 0 and leave room for value labels on whichever side the bars extend."""
    finite = [value for value in values if not math.isnan(value)] or [0.0]
    low, high = min(0.0, *finite), max(0.0, *finite)
    pad = 0.18 * (high - low) or 1.0
    return (low - pad if low < 0 else 0.0), (high + pad if high > 0 or low == 0 else 0.0)


def _tidy(axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)


def _legend(figure: Figure, entries: list[ReportEntry]) -> None:
    handles = [Patch(color=colour(position), label=entry.label) for position, entry in enumerate(entries)]
    figure.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=9)


def partition_metrics(entries: list[ReportEntry]) -> dict[str, list[MetricKey]]:
    """Metric keys per chart: efficacy and utility metrics within [0, 1], and all the others but counts."""
    values = [entry.metric_values() for entry in entries]
    keys = list(dict.fromkeys(key for entry_values in values for key in entry_values))
    charts: dict[str, list[MetricKey]] = {EFFICACY: [], UTILITY: [], OTHER: []}
    for key in keys:
        aspect = describe_metric(key).aspect
        if aspect == CONTEXT:
            continue
        in_unit_range = all(0 <= entry_values[key] <= 1 for entry_values in values if key in entry_values)
        chart = chart_of(aspect)
        charts[chart if chart != OTHER and in_unit_range else OTHER].append(key)
    return charts


def metric_bars(
    entries: list[ReportEntry], keys: list[MetricKey], name: str, title: str, caption: str
) -> Chart | None:
    """Grouped bars on a shared [0, 1] axis: one group per metric, one bar per entry, in rows of
    at most METRICS_PER_ROW metrics."""
    if not keys:
        return None
    labels = metric_labels(keys)
    values = [entry.metric_values() for entry in entries]
    rows = [keys[start:start + METRICS_PER_ROW] for start in range(0, len(keys), METRICS_PER_ROW)]
    slots = len(rows[0])  # every row spans the same width, so bars keep one size
    figure = Figure(figsize=(FULL_WIDTH, 0.5 + 3.4 * len(rows)), layout="constrained")
    bar_width = 0.8 / len(entries)
    annotate = slots * len(entries) <= MAX_ANNOTATED_BARS
    for row_index, row_keys in enumerate(rows):
        axes = figure.add_subplot(len(rows), 1, row_index + 1)
        for position, entry_values in enumerate(values):
            offsets = [index + (position - (len(entries) - 1) / 2) * bar_width for index in range(len(row_keys))]
            heights = [entry_values.get(key, math.nan) for key in row_keys]
            bars = axes.bar(offsets, heights, bar_width, color=colour(position))
            if annotate:
                axes.bar_label(bars, labels=[_bar_text(height) for height in heights], fontsize=7, padding=2)
        ticks = [f"{labels[key]} {describe_metric(key).arrow}".strip() for key in row_keys]
        axes.set_xticks(range(len(row_keys)), ticks, rotation=25, ha="right", fontsize=9)
        axes.set_xlim(-0.5, slots - 0.5)
        axes.set_ylim(0, 1.1)
        _tidy(axes)
    figure.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
    _legend(figure, entries)
    return Chart(name, title, caption, png_bytes(figure))


def metric_panels(entries: list[ReportEntry], keys: list[MetricKey]) -> Chart | None:
    """Small multiples: one panel (own scale) per metric, one bar per entry."""
    if not keys:
        return None
    labels = metric_labels(keys)
    values = [entry.metric_values() for entry in entries]
    columns = min(PANELS_PER_ROW, len(keys))
    rows = math.ceil(len(keys) / columns)
    figure = Figure(figsize=(max(FULL_WIDTH, 2.6 * columns + 1.6), 2.9 * rows), layout="constrained")
    for index, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, index + 1)
        heights = [entry_values.get(key, math.nan) for entry_values in values]
        bars = axes.bar(range(len(entries)), heights, color=[colour(position) for position in range(len(entries))])
        texts = ["" if math.isnan(height) else format_number(height) for height in heights]
        axes.bar_label(bars, labels=texts, fontsize=8, padding=2)
        axes.axhline(0, color="#888888", linewidth=0.8)
        axes.set_ylim(*_padded_range(heights))
        axes.set_xticks([])
        axes.set_title(textwrap.fill(f"{labels[key]} {describe_metric(key).arrow}".strip(), 28), fontsize=9)
        _tidy(axes)
    _legend(figure, entries)
    title = "Other metrics (each on its own scale)"
    caption = "Fluency, privacy and any metric outside [0, 1]; the arrow (or ≈ target) says which way is better."
    return Chart("other_metrics", title, caption, png_bytes(figure))


def tradeoff_scatter(entries: list[ReportEntry], forgetting: Score | None, utility: Score | None,
                     roles: dict[str, str] | None = None) -> Chart | None:
    """One point per entry: utility kept (x) against forgetting achieved (y); top right is best. The retain
    model (★) and the original model (✕) are drawn in black."""
    if forgetting is None or utility is None:
        return None
    roles = roles or {}
    points = [
        (position, entry.label, (utility.values[entry.label], forgetting.values[entry.label]))
        for position, entry in enumerate(entries)
        if entry.label in utility.values and entry.label in forgetting.values
    ]
    if not points:
        return None
    labels_at: dict[tuple[float, float], list[str]] = {}  # entries with equal scores share one label
    figure = Figure(figsize=(8, 4.6), layout="constrained")
    axes = figure.add_subplot()
    for position, label, point in points:
        marker = REFERENCE_MARKERS.get(roles.get(label, ""))
        if marker:
            axes.scatter(*point, s=170, marker=marker, color="#000000", zorder=4)
        else:
            axes.scatter(*point, s=80, color=colour(position), zorder=3)
        labels_at.setdefault((round(point[0], 3), round(point[1], 3)), []).append(label)
    for point, labels in labels_at.items():
        axes.annotate(", ".join(labels), point, xytext=(7, 5), textcoords="offset points", fontsize=9)
    axes.set_xlim(-0.02, 1.1)
    axes.set_ylim(-0.02, 1.1)
    axes.set_xlabel(f"utility: {utility.description}")
    axes.set_ylabel(f"forgetting: {forgetting.description}")
    axes.text(1.08, 1.08, "better ↗", ha="right", va="top", fontsize=9, color="#555555")
    axes.set_title("Forgetting vs utility", loc="left", fontsize=12, fontweight="bold")
    _tidy(axes)
    axes.grid(axis="x", alpha=0.3)
    caption = (
        f"★ retain model, ✕ the model before unlearning. x = {utility.description} "
        f"({', '.join(metric_labels(utility.metrics).values())}); y = {forgetting.description}. Both in [0, 1]; "
        "the top right corner forgets everything and keeps everything."
    )
    return Chart("tradeoff", "Forgetting vs utility", caption, png_bytes(figure))


def loss_curves(runs: list[RunInfo]) -> Chart | None:
    """The training loss of each run against its step."""
    logged = [run for run in runs if run.loss_log]
    if not logged:
        return None
    figure = Figure(figsize=(FULL_WIDTH, 4), layout="constrained")
    axes = figure.add_subplot()
    for position, run in enumerate(logged):
        steps = [row["step"] for row in run.loss_log]
        losses = [row["loss"] for row in run.loss_log]
        axes.plot(steps, losses, color=colour(position), linewidth=1.8, label=f"{run.name} ({run.method or '?'})")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("Training loss", loc="left", fontsize=12, fontweight="bold")
    axes.legend(frameon=False, fontsize=9)
    _tidy(axes)
    caption = (
        "The unlearning objective logged by `obliviate unlearn` (run.json loss_log); "
        "its sign and scale depend on the method."
    )
    return Chart("loss_curve", "Training loss", caption, png_bytes(figure))
