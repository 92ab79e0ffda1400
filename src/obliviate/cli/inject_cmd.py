"""`obliviate inject`: fine-tune new fictitious people into a model, to unlearn and probe them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app


@app.command("inject")
def inject_command(
    model: Annotated[str, typer.Option("--model", help="Model directory with a base_eval.json naming its world.")],
    entities: Annotated[int, typer.Option("--entities", help="How many new people to inject (at least 2).")],
    out: Annotated[Path, typer.Option("--out", help="Output: the fine-tuned model and entities/ (their QA, probes).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated people and the fine-tuning.")] = 0,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="key=value fine-tuning setting (e.g. --set epochs=20); repeatable.")] = None,
) -> None:
    """Generate ENTITIES new people and fine-tune MODEL on them; write the model and their QA to --out."""
    from obliviate.entity import inject

    path = inject(model, entities, out, seed, overrides=settings)
    typer.echo(f"model: {path}\nentities: {path / 'entities'} (World(...) loads them)")
