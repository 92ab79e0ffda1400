"""The `obliviate` command line. Each command group lives in its own module and registers on `app`."""

from __future__ import annotations

import sys

import typer

from obliviate.errors import ObliviateError

app = typer.Typer(
    name="obliviate",
    help="Make a language model forget chosen knowledge, and prove it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# Command modules register themselves on `app` when imported.
from obliviate.cli import (  # noqa: E402,F401
    attack_cmd, base_cmd, bench_cmd, data_cmd, demo_cmd, eval_cmd, export_cmd, inject_cmd, report_cmd, unlearn_cmd,
    world_cmd,
)
from obliviate.cli import model_cmd  # noqa: E402,F401


def main() -> None:
    try:
        app()
    except ObliviateError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
