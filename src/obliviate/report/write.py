"""`write_report`: load inputs, build the report, write it atomically as HTML or Markdown."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Union

from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_text
from obliviate.report.build import build_report
from obliviate.report.entries import ReportEntry, load_entries, with_unique_labels
from obliviate.report.html import render_html
from obliviate.report.markdown import render_markdown

ReportInput = Union[str, os.PathLike, ReportEntry]


def write_report(inputs: ReportInput | Iterable[ReportInput], out: str | os.PathLike, title: str | None = None) -> Path:
    """Write a report on eval JSONs, run directories and/or ReportEntry objects to `out`.

    A `.md` suffix writes Markdown with its charts as PNGs in `<stem>_files/` next to it; any other
    suffix writes one self-contained HTML page. Inputs are all loaded before anything is written,
    so a bad input leaves no output behind.
    """
    if isinstance(inputs, (str, os.PathLike, ReportEntry)):
        inputs = [inputs]
    entries: list[ReportEntry] = []
    for item in inputs:
        entries += [item] if isinstance(item, ReportEntry) else load_entries([item])
    if not entries:
        raise ObliviateError("nothing to report on: give at least one eval JSON or run directory")
    report = build_report(with_unique_labels(entries), title)
    out = Path(out)
    if out.suffix.lower() != ".md":
        return atomic_write_text(out, render_html(report))
    images_folder = out.with_name(f"{out.stem}_files")
    text, images = render_markdown(report, images_folder.name)
    if images:
        with atomic_directory(images_folder) as staging:
            for name, png in images.items():
                (staging / name).write_bytes(png)
    return atomic_write_text(out, text)
