"""Render a report as Markdown: the same tables as the HTML page, and each chart as a PNG file in a
folder next to the `.md` file (`report.md` → `report_files/`), linked by a relative path."""

from __future__ import annotations

from obliviate.report.document import Report, Table
from obliviate.report.scorecard import Scorecard, tile_columns


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _column_labels(table: Table) -> list[str]:
    """Markdown has one header row: fold the group label into each column's label."""
    if not table.column_groups:
        return table.columns
    groups = [label for label, span in table.column_groups for _ in range(span)]
    return [f"{group} · {column}" if group else column for group, column in zip(groups, table.columns)]


def _table(table: Table) -> str:
    lines = [f"### {table.title}", ""] if table.title else []
    lines.append("| " + " | ".join(_cell(label) for label in _column_labels(table)) + " |")
    aligns = ["---:" if index >= table.numbers_from else "---" for index in range(len(table.columns))]
    lines.append("| " + " | ".join(aligns) + " |")
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines)


def scorecard_table(cards: list[Scorecard]) -> Table:
    """The scorecards as one table: a row per model, a column per tile; a cell holds value, references, verdict."""
    columns = tile_columns(cards)
    rows = []
    for card in cards:
        tiles = {tile.name: tile for tile in card.tiles}
        cells = [f"{card.label} ({card.headline})" if card.headline else card.label]
        for name in columns:
            tile = tiles.get(name)
            verdict = tile.verdict.text if tile is not None and tile.verdict else ""
            parts = [] if tile is None else [f"**{tile.value}**", tile.detail, verdict]
            cells.append("; ".join(part for part in parts if part) or "–")
        rows.append(cells)
    return Table(["model", *columns.values()], rows, numbers_from=len(columns) + 1)


def render_markdown(report: Report, images_folder: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text, and the PNG files it links to (file name -> bytes) inside `images_folder`."""
    images = {f"{chart.name}.png": chart.png for chart in report.charts}
    blocks = [f"# {report.title}", f"_{report.subtitle}_"]
    for section in report.sections:
        blocks.append(f"## {section.title}")
        blocks += [line for line in section.intro.splitlines() if line]
        if section.scorecards:
            blocks.append(_table(scorecard_table(section.scorecards)))
        if section.note:
            blocks.append(f"_{section.note}_")
        blocks += [_table(table) for table in section.tables]
        blocks += [
            f"![{chart.title}]({images_folder}/{chart.name}.png)\n\n_{chart.caption}_" for chart in section.charts
        ]
    return "\n\n".join(blocks) + "\n", images
