"""Render a report as one self-contained HTML page: inline CSS, charts as base64 PNG, one small inline script
(sorting the scorecard table, where there is one), no fonts or anything else fetched from elsewhere.

One scorecard is drawn as a row of tiles; several as one table, sortable by any column. Tables wrap their
headers and long cells so that they fit the page; only on a narrow screen does a wide one scroll in its box."""

from __future__ import annotations

import base64
from html import escape

from obliviate.report.document import Chart, Report, Section, Table
from obliviate.report.scorecard import Scorecard, Tile, tile_columns

STYLE = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --accent: #0072b2; --head: #eef1f4; --zebra: #f8f9fb; }
* { box-sizing: border-box; }
body { margin: 0; background: #f1f3f5; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 20px 28px 40px; }
h1 { font-size: 28px; margin: 8px 0 2px; }
.subtitle { color: var(--muted); margin: 0 0 10px; }
nav a { color: var(--accent); margin-right: 16px; text-decoration: none; font-weight: 500; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px;
          padding: 16px 22px 10px; margin: 16px 0; }
h2 { font-size: 20px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 16px 0 4px; }
p { margin: 4px 0 8px; max-width: 95ch; }
.table-wrap { overflow-x: auto; margin: 6px 0 12px; max-width: 100%; }
table { border-collapse: collapse; font-size: 13.5px; }
table.text { width: 100%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
thead th { background: var(--head); font-weight: 600; }
thead th.group { text-align: center; border-bottom: 2px solid var(--accent); }
tbody tr:nth-child(even) { background: var(--zebra); }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.grouped th { white-space: normal; }
table.grouped td:first-child { white-space: nowrap; }
table.grouped th, table.grouped td { padding: 4px 7px; }
figure { margin: 14px 0 18px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; }
details > summary { cursor: pointer; color: var(--accent); font-weight: 500; margin: 6px 0; }
.card h3 { margin: 6px 0; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(165px, 1fr)); gap: 10px; margin: 6px 0 12px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; background: #fbfcfd; }
.tile-name { color: var(--muted); font-size: 13px; }
.tile-value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile-detail, .cell-detail { color: var(--muted); font-size: 12px; }
p.note { color: var(--muted); font-size: 13px; }
.verdict { font-size: 12.5px; font-weight: 600; }
.verdict.good { color: #1a7f37; }
.verdict.bad { color: #c62828; }
table.scorecards th { cursor: pointer; }
table.scorecards td.num { white-space: normal; }
table.scorecards th[aria-sort]::after { content: " ⇅"; color: var(--muted); }
@media (max-width: 600px) {
  main { padding: 10px 8px 30px; } section { padding: 12px 10px 8px; }
  table.scorecards thead { display: none; }
  table.scorecards tr, table.scorecards td { display: block; text-align: left; }
  table.scorecards tr { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 10px; }
  table.scorecards td[data-label]::before { content: attr(data-label); display: block; color: var(--muted); }
}
"""

SORT_SCRIPT = """
document.querySelectorAll("table.scorecards").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (header, column) {
    header.setAttribute("aria-sort", "none");
    header.addEventListener("click", function () {
      var descending = header.getAttribute("aria-sort") === "ascending";
      table.querySelectorAll("thead th").forEach(function (other) { other.setAttribute("aria-sort", "none"); });
      header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.sort, y = b.cells[column].dataset.sort;
        var order = (x === undefined || y === undefined || isNaN(x) || isNaN(y))
          ? String(x).localeCompare(String(y)) : Number(x) - Number(y);
        return descending ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _row(cells: list[str], tag: str, numbers_from: int) -> str:
    rendered = "".join(
        f'<{tag} class="num">{escape(cell)}</{tag}>' if index >= numbers_from else f"<{tag}>{escape(cell)}</{tag}>"
        for index, cell in enumerate(cells)
    )
    return f"<tr>{rendered}</tr>"


def _table_class(table: Table) -> str:
    if table.column_groups:
        return ' class="grouped"'
    return ' class="text"' if table.numbers_from >= len(table.columns) else ""


def _table(table: Table) -> str:
    parts = [f"<h3>{escape(table.title)}</h3>"] if table.title and not table.folded else []
    head = ""
    if table.column_groups:
        groups = "".join(
            f'<th colspan="{span}" class="group">{escape(label)}</th>' if label else f'<th colspan="{span}"></th>'
            for label, span in table.column_groups
        )
        head = f"<tr>{groups}</tr>"
    head += _row(table.columns, "th", table.numbers_from)
    body = "".join(_row(row, "td", table.numbers_from) for row in table.rows)
    parts.append(
        f'<div class="table-wrap"><table{_table_class(table)}><thead>{head}</thead><tbody>{body}</tbody></table></div>'
    )
    if table.folded:
        return _folded(table.title or "table", "\n".join(parts))
    return "\n".join(parts)


def _verdict(tile: Tile) -> str:
    if tile.verdict is None:
        return ""
    kind = {True: " good", False: " bad"}.get(tile.verdict.good, "")
    return f'<div class="verdict{kind}">{escape(tile.verdict.text)}</div>'


def _tile(tile: Tile) -> str:
    return (f'<div class="tile"><div class="tile-name">{escape(tile.measure_note)}</div>'
            f'<div class="tile-value">{escape(tile.value)}</div>'
            f'<div class="tile-detail">{escape(tile.detail)}</div>{_verdict(tile)}</div>')


def _card(card: Scorecard) -> str:
    heading = escape(card.label) + (f" <small>({escape(card.headline)})</small>" if card.headline else "")
    return f'<div class="card"><h3>{heading}</h3><div class="tiles">{"".join(map(_tile, card.tiles))}</div></div>'


def _scorecard_table(cards: list[Scorecard]) -> str:
    """Several scorecards as one table: a row per model, a column per tile, sortable by clicking a header."""
    columns = tile_columns(cards)
    head = "<th>model</th>" + "".join(f"<th>{escape(heading)}</th>" for heading in columns.values())
    rows = []
    for card in cards:
        tiles = {tile.name: tile for tile in card.tiles}
        cells = [(f'<td data-sort="{escape(card.label)}">{escape(card.label)}'
                  f'<div class="cell-detail">{escape(card.headline)}</div></td>')]
        for name in columns:
            tile = tiles.get(name)
            if tile is None:
                cells.append('<td class="num" data-sort="NaN">–</td>')
                continue
            sort = "NaN" if tile.sort_value is None else repr(tile.sort_value)
            label = escape(tile.measure_note)
            cells.append(f'<td class="num" data-sort="{sort}" data-label="{label}">{escape(tile.value)}'
                         f'<div class="cell-detail">{escape(tile.detail)}</div>{_verdict(tile)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="table-wrap"><table class="scorecards"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _scorecards(cards: list[Scorecard]) -> str:
    if not cards:
        return ""
    return _card(cards[0]) if len(cards) == 1 else _scorecard_table(cards)


def _folded(summary: str, body: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>\n{body}\n</details>"


def _figure(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(chart.title)}">'
        f"<figcaption>{escape(chart.caption)}</figcaption></figure>"
    )


def _section(section: Section) -> str:
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in section.intro.splitlines() if line)
    note = f'<p class="note">{escape(section.note)}</p>' if section.note else ""
    parts = [_scorecards(section.scorecards), note] + [_table(table) for table in section.tables]
    body = "\n".join(parts + [_figure(chart) for chart in section.charts])
    if section.folded:
        body = _folded(f"Show {section.title.lower()}", body)
    return f'<section id="{section.anchor}">\n<h2>{escape(section.title)}</h2>\n{paragraphs}\n{body}\n</section>'


def render_html(report: Report) -> str:
    nav = "".join(f'<a href="#{section.anchor}">{escape(section.title)}</a>' for section in report.sections)
    sections = "\n".join(_section(section) for section in report.sections)
    sortable = any(len(section.scorecards) > 1 for section in report.sections)
    script = f"<script>{SORT_SCRIPT}</script>" if sortable else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(report.title)}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<header>
<h1>{escape(report.title)}</h1>
<p class="subtitle">{escape(report.subtitle)}</p>
<nav>{nav}</nav>
</header>
{sections}
<footer>Written by obliviate report.</footer>
</main>
{script}
</body>
</html>
"""
