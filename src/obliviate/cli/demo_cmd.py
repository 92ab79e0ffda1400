"""`obliviate demo`: run the whole story offline, on the tiny model or on a real pretrained chat model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from obliviate.cli import app
from obliviate.demo import DEFAULT_METHOD


@app.command("demo")
def demo_command(
    preset: str = typer.Option("test", "--preset", help="Tiny model size: test (minutes on 2 cores) or small."),
    model: Optional[str] = typer.Option(
        None, "--model", help="A pretrained chat model instead of the tiny one: a named offline model "
                              "(smollm2-135m, see `obliviate model list`), a .gguf file, a directory or a hub name. "
                              "It is taught 4 fictitious people, then 2 are unlearned (about 20 minutes on 2 cores "
                              "for SmolLM2-135M)."),
    method: str = typer.Option(DEFAULT_METHOD, "--method", help="Unlearning method (see `obliviate methods`)."),
    out: Path = typer.Option(None, "--out", help="Where the runs, evals and report.html go "
                                                 "(default: the cache's demo/<preset or model>)."),
) -> None:
    """World → retain model → full model grown from it → unlearn → evaluate → summary table and report.html.
    With --model: teach a pretrained chat model a few people → unlearn some → evaluate → report.html."""
    if model is not None:
        from obliviate.demo_pretrained import run_pretrained_demo

        run_pretrained_demo(model, method, out)
        return
    from obliviate.demo import run_demo

    run_demo(preset, method, out)
