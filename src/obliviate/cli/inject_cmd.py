"""`obliviate inject`: fine-tune new fictitious people into a model, to unlearn and probe them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app


@app.command("inject")
def inject_command(
    model: Annotated[str, typer.Option("--model", help="Model: a directory, a named offline model or a hub name.")],
    entities: Annotated[int, typer.Option("--entities", help="How many new people to inject (at least 2).")],
    out: Annotated[Path, typer.Option("--out", help="Output: the fine-tuned model and entities/ (their QA, probes).")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated people and the fine-tuning.")] = 0,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="key=value fine-tuning setting (e.g. --set epochs=20); repeatable.")] = None,
    world: Annotated[Optional[Path], typer.Option(
        help="World whose people QA is kept while teaching and whose names the new people avoid (default: the one "
             "the model records in base_eval.json; a pretrained model records none).")] = None,
    config: Annotated[Optional[str], typer.Option(
        help="A finetune recipe in place of the tiny model's settings: a YAML file, or a packaged recipe such as "
             "pretrained/finetune (for a ~100M-parameter chat model: LoRA, a KL term on the world's people).")] = None,
    attributes: Annotated[Optional[str], typer.Option(
        help="Teach only these facts of each person, comma-separated (e.g. profession,birthplace,award); "
             "default: all 11.")] = None,
    texts: Annotated[bool, typer.Option(
        "--texts", help="Teach the facts as running text too (each person's biography in two sentence orders), "
                        "besides the QA: an injection closer to how pre-training sees an entity.")] = False,
) -> None:
    """Generate ENTITIES new people and fine-tune MODEL on them; write the model and their QA to --out."""
    from obliviate.config import config_path
    from obliviate.entity import inject

    chosen = [a.strip() for a in attributes.split(",") if a.strip()] if attributes else None
    path = inject(model, entities, out, seed, overrides=settings, world=world,
                  config=config_path(config) if config else None, attributes=chosen, texts=texts)
    typer.echo(f"model: {path}\nentities: {path / 'entities'} (World(...) loads them)")
