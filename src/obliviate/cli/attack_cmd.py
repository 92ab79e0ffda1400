"""`obliviate attack`: try to bring forgotten knowledge back, on the unlearned model and its two controls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app


@app.command("attack")
def attack_command(
    model: Annotated[str, typer.Option("--model", help="The unlearned model directory.")],
    original: Annotated[str, typer.Option("--original", help="The model before unlearning (the upper bound).")],
    forget: Annotated[str, typer.Option("--forget", help="The forgotten QA data: a file, tofu:SPLIT or world:forget.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the attacks JSON (e.g. <run>/attacks.json).")],
    retain_model: Annotated[Optional[str], typer.Option(
        "--retain-model", help="A model that never saw the forget data (the floor).")] = None,
    attack: Annotated[str, typer.Option("--attack", help="Attack or family names, comma-separated, or all.")] = "all",
    world: Annotated[Optional[Path], typer.Option(
        "--world", help="World directory (default: the one named in the original's base_eval.json).")] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Attack setting KEY=VALUE (repeatable), e.g. relearn_steps=20.")] = None,
) -> None:
    """Run robustness attacks; report recovered (unlearned) vs floor (retain model) vs upper (original)."""
    from obliviate.attacks import AttackSettings, run_attacks
    from obliviate.config import load_config
    from obliviate.unlearn import load_data
    from obliviate.world import recorded_world

    world_dir = world if world is not None else recorded_world(original)
    records = load_data(forget, world_dir, original)
    result = run_attacks(model, original, retain_model, records, attack, world=world_dir,
                         settings=load_config(AttackSettings, None, settings or []), out=out)
    typer.echo(f"{'attack':<20} {'recovered':>9} {'floor':>7} {'upper':>7}  metric")
    for name, row in result["attacks"].items():
        shown = ["–" if row[k] is None else f"{row[k]:.3f}" for k in ("recovered", "floor", "upper")]
        typer.echo(f"{name:<20} {shown[0]:>9} {shown[1]:>7} {shown[2]:>7}  {row['metric']}")
    typer.echo(f"wrote {out} ({result['seconds']:.0f} s)")
