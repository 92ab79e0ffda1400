"""`obliviate world`: generate the synthetic world."""

from __future__ import annotations

from pathlib import Path

import typer

from obliviate.cli import app


@app.command("world")
def world_command(
    out: Path = typer.Option(..., "--out", help="Directory to write the world into (replaced atomically)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed and size give byte-identical files."),
    entities: int = typer.Option(100, "--entities", help="Number of fictitious people (20 to 10000)."),
) -> None:
    """Generate a deterministic world of fictitious people, crafts and countries."""
    from rich.console import Console

    from obliviate.world import World, build_world

    path = build_world(out, seed=seed, entities=entities)
    manifest = World(path).manifest
    console = Console()
    console.print(f"world written to [bold]{path}[/bold] (seed {seed}, {entities} people)")
    for name, info in manifest["files"].items():
        console.print(f"  {info['path']:<36} {info['count']:>7} {info['schema']:<6} {info['description']}")
