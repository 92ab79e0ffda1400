"""`obliviate demo`: run the whole story offline on the embedded world and tiny model."""

from __future__ import annotations

import typer

from obliviate.cli import app


@app.command("demo")
def demo_command(
    preset: str = typer.Option("test", "--preset", help="Model size: test (about 2 min on 2 cores) or small."),
) -> None:
    """Build the world and tiny model (cached), then show the model answering world questions."""
    from obliviate.demo import run_demo

    run_demo(preset)
