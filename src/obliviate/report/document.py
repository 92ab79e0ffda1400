"""The report as plain data — sections of text, tables and charts — that the HTML and Markdown
renderers both draw from, so the two formats always show the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

from obliviate.report.scorecard import Scorecard


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]  # already formatted cells
    title: str = ""
    # Columns from this index on hold numbers (right-aligned).
    numbers_from: int = 1
    # An optional header row above `columns`: (label, how many columns it spans).
    column_groups: list[tuple[str, int]] = field(default_factory=list)
    folded: bool = False  # shown closed (HTML <details>) until opened


@dataclass
class Chart:
    name: str  # file stem when written next to a Markdown report
    title: str
    caption: str
    png: bytes


@dataclass
class Section:
    anchor: str
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    scorecards: list[Scorecard] = field(default_factory=list)  # drawn before the tables and charts
    note: str = ""  # under the scorecards: how to read them
    folded: bool = False  # shown closed (HTML <details>) until opened


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section]

    @property
    def charts(self) -> list[Chart]:
        return [chart for section in self.sections for chart in section.charts]
