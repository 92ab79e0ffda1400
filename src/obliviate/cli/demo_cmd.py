"""`obliviate demo`: run the whole story offline on the embedded world and tiny model."""

from __future__ import annotations

from pathlib import Path

import typer

from obliviate.cli import app
from obliviate.demo import DEFAULT_METHOD


@app.command("demo")
def demo_command(
    preset: str = typer.Option("test", "--preset", help="Model size: test (minutes on 2 cores) or small."),
    method: str = typer.Option(DEFAULT_METHOD, "--method", help="Unlearning method (see `obliviate methods`)."),
    out: Path = typer.Option(None, "--out", help="Where the run, evals and report.html go "
                                                 "(default: the cache's demo/<preset>)."),
) -> None:
    """World → retain model → full model grown from it → unlearn → evaluate → summary table and report.html."""
    from obliviate.demo import run_demo

    run_demo(preset, method, out)
