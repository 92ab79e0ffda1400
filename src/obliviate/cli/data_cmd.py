"""`obliviate data`: validate data files and count benchmark splits."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app
from obliviate.data import TOFU_SPLITS, load_mcq, load_qa, load_texts, load_tofu

data_app = typer.Typer(help="Validate data files and count benchmark splits.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class RecordKind(str, Enum):
    qa = "qa"
    mcq = "mcq"
    text = "text"


_LOADERS = {RecordKind.qa: load_qa, RecordKind.mcq: load_mcq, RecordKind.text: load_texts}


@data_app.command("check")
def check(
    file: Annotated[str, typer.Argument(help="A .json, .jsonl, .parquet or .txt file, or a hub dataset owner/name.")],
    kind: Annotated[RecordKind, typer.Option(help="The kind of record every row must be.")] = RecordKind.qa,
    split: Annotated[Optional[str], typer.Option(help="The split to read, for files or datasets with several.")] = None,
) -> None:
    """Load FILE as records of one kind; print how many there are and the first one."""
    records = _LOADERS[kind](file, split=split)
    typer.echo(f"{len(records)} {kind.value} records in {file}")
    typer.echo(json.dumps(records[0].to_dict(), indent=2, ensure_ascii=False))


@data_app.command("tofu")
def tofu(
    split: Annotated[str, typer.Argument(help=f"One of: {', '.join(TOFU_SPLITS)}.")],
    root: Annotated[
        Optional[Path],
        typer.Option(help="TOFU directory; default $OBLIVIATE_TOFU_DIR, ../shared/data/tofu, else the hub."),
    ] = None,
    task_id: Annotated[str, typer.Option(help="Which alternative forget set (\"1\" is the standard one).")] = "1",
) -> None:
    """Load one TOFU split and print its number of QA records."""
    records = load_tofu(split, root=root, task_id=task_id)
    typer.echo(f"{len(records)} QA records in TOFU split {split}")
