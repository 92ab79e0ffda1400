"""`obliviate report`: scorecards, tables and charts from eval JSONs and run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app

INPUTS_HELP = "Run directories (from `obliviate unlearn`) and/or eval JSONs (from `obliviate eval`)."
OUT_HELP = "report.html (one self-contained page) or report.md (with its charts in report_files/)."


@app.command("report")
def report_command(
    inputs: Annotated[list[Path], typer.Argument(help=INPUTS_HELP)],
    out: Annotated[Path, typer.Option("--out", help=OUT_HELP)] = Path("report.html"),
    title: Annotated[Optional[str], typer.Option("--title", help="Page title; default names the methods.")] = None,
) -> None:
    """Write a report: first a scorecard per unlearned model (forgetting, utility, fluency, attacks, time, each
    against the model before and the retain model), then charts, every metric by axis, per-entity tables,
    example generations, attacks. The retain model is the eval the others took as --reference-eval, or one
    labelled "retain…"."""
    from obliviate.report import write_report

    path = write_report(inputs, out, title=title)
    typer.echo(f"report written to {path}")
