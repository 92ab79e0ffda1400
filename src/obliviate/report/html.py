"""Render a report as one self-contained HTML page: inline CSS, charts as base64 PNG, no scripts,
no fonts or anything else fetched from elsewhere."""

from __future__ import annotations

import base64
from html import escape

from obliviate.report.document import Chart, Report, Section, Table

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
.table-wrap { overflow-x: auto; margin: 6px 0 12px; }
table { border-collapse: collapse; font-size: 13.5px; }
table.text { width: 100%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; white-space: nowrap; }
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
    parts = [f"<h3>{escape(table.title)}</h3>"] if table.title else []
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
    return "\n".join(parts)


def _figure(chart: Chart) -> str:
    data = base64.b64encode(chart.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(chart.title)}">'
        f"<figcaption>{escape(chart.caption)}</figcaption></figure>"
    )


def _section(section: Section) -> str:
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in section.intro.splitlines() if line)
    body = "\n".join([_table(table) for table in section.tables] + [_figure(chart) for chart in section.charts])
    return f'<section id="{section.anchor}">\n<h2>{escape(section.title)}</h2>\n{paragraphs}\n{body}\n</section>'


def render_html(report: Report) -> str:
    nav = "".join(f'<a href="#{section.anchor}">{escape(section.title)}</a>' for section in report.sections)
    sections = "\n".join(_section(section) for section in report.sections)
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
</body>
</html>
"""
