"""`obliviate methods` and `obliviate unlearn`: list the unlearning methods, run one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app


@app.command("methods")
def methods_command() -> None:
    """List the unlearning methods: name, what the loss does, and the defaults that differ from the shared ones."""
    from rich.console import Console
    from rich.table import Table

    from obliviate.config import config_to_dict
    from obliviate.unlearn import UnlearnConfig, all_methods

    shared = ", ".join(f"{key}={value}" for key, value in config_to_dict(UnlearnConfig()).items())
    table = Table(title="unlearning methods", caption=f"every method also takes (shared defaults): {shared}")
    for column in ("name", "loss", "defaults"):
        table.add_column(column)
    for method in all_methods():
        table.add_row(method.name, method.description, ", ".join(f"{k}={v}" for k, v in method.defaults().items()))
    Console(width=160).print(table)


DATA_FORMS = "a QA/text file, tofu:SPLIT, or world:forget|retain|neighbours|entities=0-2,5 [:private|:public]"


@app.command("unlearn")
def unlearn_command(
    model: Annotated[str, typer.Option(help="Model directory (or hub name) to unlearn from; never written.")],
    method: Annotated[str, typer.Option(help="Method name; see `obliviate methods`.")],
    forget: Annotated[str, typer.Option(help=f"Data to forget: {DATA_FORMS}.")],
    out: Annotated[Path, typer.Option(help="Output directory: model, config.yaml, run.json.")],
    retain: Annotated[Optional[str], typer.Option(help="Data to keep (same forms as --forget).")] = None,
    world: Annotated[Optional[Path], typer.Option(
        help="World directory for world:… data (default: the one named in the model's base_eval.json).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of settings (over the defaults).")] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="key=value setting, applied last; repeatable (e.g. --set lr=1e-4 --set lora.r=16).")] = None,
    lora: Annotated[Optional[bool], typer.Option(
        "--lora/--full", help="Train LoRA adapters, or all weights (default: the config's use_lora).")] = None,
    save_adapter: Annotated[bool, typer.Option(help="Save the LoRA adapter alone, unmerged.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
) -> None:
    """Make MODEL forget the --forget data with a method; write the unlearned model to --out.

    Under `accelerate launch` or `torchrun` the same command trains on several processes
    (see docs/distributed.md); batch_size is per process.
    """
    import json

    from accelerate import PartialState

    from obliviate.unlearn import unlearn

    overrides = list(settings or []) + ([] if lora is None else [f"use_lora={lora}"])
    path = unlearn(model, method, forget, retain, out, config, overrides=overrides, world=world,
                   save_adapter=save_adapter, resume=resume)
    if not PartialState().is_main_process:
        return
    report = json.loads((path / "run.json").read_text(encoding="utf-8"))
    losses = ", ".join(f"{name} {value:.4f}" for name, value in report["final_losses"].items())
    typer.echo(f"{method}: {report['steps']} steps in {report['train_seconds']:.1f} s, final losses: {losses}")
    typer.echo(f"model: {path}")
