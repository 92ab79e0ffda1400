"""`obliviate model`: import a GGUF file as a Hugging Face directory; list the named offline models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from obliviate.cli import app

model_app = typer.Typer(help="Import GGUF models; list the named offline models.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("import")
def import_model(
    source: Annotated[str, typer.Argument(help="A .gguf file, or a named model (see `obliviate model list`).")],
    out: Annotated[Path, typer.Option(help="The Hugging Face directory to write (safetensors, tokenizer).")],
) -> None:
    """Convert a GGUF file to a plain Hugging Face directory that transformers loads without obliviate."""
    from obliviate.models.gguf import import_gguf

    started = time.perf_counter()
    import_gguf(source, out)
    typer.echo(f"wrote {out} from {source} in {time.perf_counter() - started:.1f} s")


@model_app.command("list")
def list_models() -> None:
    """The named offline models: what each is, and whether it is installed (usable as --model NAME)."""
    from obliviate.models.gguf import NAMED_MODELS

    for model in NAMED_MODELS.values():
        path = model.path()
        state = f"installed: {path}" if path else f"not installed: {model.install}"
        typer.echo(f"{model.name}  {model.description}\n    {state}")
