"""`obliviate export`: write a model as a GGUF file that llama.cpp runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from obliviate.cli import app


@app.command("export")
def export_command(
    model: Annotated[str, typer.Argument(help="The model directory (a Llama), or a .gguf file or named model.")],
    out: Annotated[Path, typer.Option("--out", help="The GGUF file to write (FILE.gguf); replaces an existing one.")],
    gguf: Annotated[str, typer.Option("--gguf", help="The type of the weight matrices: F32, F16, Q8_0, Q4_0 or Q4_1.")]
    = "Q8_0",
) -> None:
    """Write a Llama model as a GGUF file (llama.cpp's tensor names and metadata, tokenizer included)."""
    from obliviate.models.gguf_export import export_gguf

    started = time.perf_counter()
    export_gguf(model, out, gguf.upper())
    typer.echo(f"wrote {out} ({gguf.upper()}, {out.stat().st_size / 2**20:.1f} MiB) from {model} "
               f"in {time.perf_counter() - started:.1f} s")
