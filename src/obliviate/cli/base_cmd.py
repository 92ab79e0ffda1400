"""`obliviate base`: train (or fetch from cache) the tiny base model for a world."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from obliviate.cli import app


@app.command("base")
def base_command(
    world: Path = typer.Option(..., "--world", help="A world directory written by `obliviate world`."),
    preset: str = typer.Option("test", "--preset", help="Model size and training recipe: test or small."),
    out: Path = typer.Option(None, "--out", help="Copy the model here (default: leave it in the cache)."),
    force: bool = typer.Option(False, "--force", help="Retrain even if a cached model exists."),
    exclude: str = typer.Option("", "--exclude-entities",
                                help="Comma-separated entity ids or names to leave out: builds a retain model."),
) -> None:
    """Train a tiny Llama-style model from scratch on a world (cached by world + preset)."""
    from obliviate.models.tiny import build_base_model
    from obliviate.world import World

    names = [item.strip() for item in exclude.split(",") if item.strip()]
    ids = [int(n) for n in names if n.isdigit()] + World(world).entity_ids([n for n in names if not n.isdigit()]) \
        if names else []
    path = build_base_model(world, preset, out=out, force=force, exclude_entities=ids)
    metrics = json.loads((path / "base_eval.json").read_text())
    typer.echo(f"model: {path}")
    for key in ("exact_match_trained", "exact_match_heldout", "exact_match_world_facts", "mcq_accuracy"):
        typer.echo(f"  {key:<26} {metrics[key]:.3f}")
    typer.echo(f"  trained in {metrics['train_seconds']:.0f} s ({metrics['parameters'] / 1e6:.2f} M parameters)")
