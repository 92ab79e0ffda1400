"""`obliviate methods` and `obliviate unlearn`: list the unlearning methods, run one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app
from obliviate.errors import ObliviateError


@app.command("methods")
def methods_command() -> None:
    """List the unlearning methods: name, what it does, and the defaults that differ from the shared ones."""
    from rich.console import Console
    from rich.table import Table

    from obliviate.config import config_to_dict
    from obliviate.unlearn import UnlearnConfig, all_methods

    shared = ", ".join(f"{key}={value}" for key, value in config_to_dict(UnlearnConfig()).items())
    table = Table(title="unlearning methods", caption=f"every loss-based method also takes (shared defaults): {shared}")
    for column in ("name", "what it does", "defaults"):
        table.add_column(column)
    for method in all_methods():
        table.add_row(method.name, method.description, ", ".join(f"{k}={v}" for k, v in method.defaults().items()))
    Console(width=160).print(table)


DATA_FORMS = "a QA/text file, tofu:SPLIT, or world:forget|retain|neighbours|entities=0-2,5 [:private|:public]"
TRAINING_ONLY = ("--lora/--full", "--save-adapter", "--resume")


@app.command("unlearn")
def unlearn_command(
    model: Annotated[str, typer.Option(help="Model directory (or hub name) to unlearn from; never written.")],
    out: Annotated[Path, typer.Option(help="Output directory: model, config.yaml, run.json.")],
    method: Annotated[Optional[str], typer.Option(
        help="Method name; see `obliviate methods` (default: the one the --config file names, as a run's "
             "config.yaml does).")] = None,
    forget: Annotated[Optional[str], typer.Option(help=f"Data to forget: {DATA_FORMS}.")] = None,
    entity: Annotated[Optional[list[str]], typer.Option(
        "--entity", help="Instead of --forget: a person of the model's world (or of --entities FILE) to forget "
                         "(repeatable). The forget set "
                         "is their QA at --coverage, the rest is held out as probes (entity_probes.jsonl, for "
                         "`obliviate eval --suite entity`); the retain set defaults to their neighbours.")] = None,
    entities: Annotated[Optional[Path], typer.Option(
        "--entities", help="With --entity: a JSONL file of entities to take them from instead of the model's world "
                           "(one per line: name, neighbours, facts of question, answer and optional "
                           "heldout_question; see obliviate.entity.entity_file), e.g. real people a pretrained "
                           "model knows.")] = None,
    coverage: Annotated[Optional[float], typer.Option(
        help="With --entity: the share of each person's attributes to forget, in (0, 1], e.g. 0.25, 0.5 "
             "(default 1.0: all; the held-out phrasings stay probes).")] = None,
    retain: Annotated[Optional[str], typer.Option(
        help="Data to keep (same forms as --forget); for unierase, the knowledge whose keys the edit "
             "preserves.")] = None,
    world: Annotated[Optional[Path], typer.Option(
        help="World directory for world:… data and --entity (default: the one the model records).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of settings (over the defaults).")] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="key=value setting, applied last; repeatable (e.g. --set lr=1e-4 --set lora.r=16; "
                      "unierase: --set mode=batch|sequential|precise --set rounds=3).")] = None,
    lora: Annotated[Optional[bool], typer.Option(
        "--lora/--full", help="Train LoRA adapters, or all weights (default: the config's use_lora).")] = None,
    save_adapter: Annotated[bool, typer.Option(help="Save the LoRA adapter alone, unmerged.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
) -> None:
    """Make MODEL forget the --forget data (or --entity people) with a method; write the unlearned model to --out.

    Under `accelerate launch` or `torchrun` the same command trains on several processes
    (see docs/distributed.md); batch_size is per process. `--method unierase` edits the model
    instead of training it; given a model written by an earlier unierase run, it continues
    that run sequentially (its state is in the model's unierase_state/).
    """
    from accelerate import PartialState

    from obliviate.unlearn import get_method

    _check_forget_options(forget, entity, coverage)
    if entities is not None:
        world = _entity_file_world(entities, entity, world)
    method = _method(method, config)
    if not get_method(method).trains:
        _check_editing_options(method, entity, lora, save_adapter, resume)
    overrides = list(settings or []) + ([] if lora is None else [f"use_lora={lora}"])
    options = {"config": config, "overrides": overrides, "world": world, "save_adapter": save_adapter,
               "resume": resume}
    path = _unlearn(model, method, forget, entity, coverage, retain, out, options)
    if PartialState().is_main_process:
        typer.echo(f"{method}: {_summary(path)}")
        typer.echo(f"model: {path}")


def _method(method: str | None, config: Path | None) -> str:
    """--method, or the method the --config file names (a run's config.yaml); load_config checks that they agree."""
    from obliviate.config import config_method

    named = config_method(config) if config is not None and method is None else None
    if method is None and named is None:
        raise ObliviateError("pass --method NAME, or a --config file that names its method (a run's config.yaml)")
    return method or named


def _check_forget_options(forget: str | None, entity: list[str] | None, coverage: float | None) -> None:
    if (forget is None) == (not entity):
        raise ObliviateError("pass one of --forget DATA and --entity NAME (repeatable)")
    if coverage is not None and not entity:
        raise ObliviateError("--coverage applies to --entity: it is the share of each person's attributes to forget")


def _entity_file_world(entities: Path, entity: list[str] | None, world: Path | None) -> Path:
    """The world directory (cached) of the --entities file's entities."""
    from obliviate.entity.entity_file import entity_world, load_entities

    if not entity:
        raise ObliviateError("--entities FILE names where the --entity NAME people come from: pass --entity too")
    if world is not None:
        raise ObliviateError("pass one of --world DIR and --entities FILE: both say where the entities come from")
    return entity_world(load_entities(entities)).root


def _check_editing_options(method: str, entity: list[str] | None, lora: bool | None, save_adapter: bool,
                           resume: bool) -> None:
    """A method that edits the model (unierase) takes --forget data and none of the training options."""
    if entity:
        raise ObliviateError(f"--method {method} takes --forget DATA; --entity works with the loss-based methods")
    if lora is not None or save_adapter or resume:
        raise ObliviateError(f"{', '.join(TRAINING_ONLY)} apply to the loss-based methods, not to {method} "
                             "(it edits the weights in one pass)")


def _unlearn(model: str, method: str, forget: str | None, entity: list[str] | None, coverage: float | None,
             retain: str | None, out: Path, options: dict) -> Path:
    """A loss-based run on --forget data, or on the --entity people's forget set."""
    if entity:
        from obliviate.entity import unlearn_entities

        return unlearn_entities(model, method, entity, out, 1.0 if coverage is None else coverage, retain, **options)
    from obliviate.unlearn import unlearn

    return unlearn(model, method, forget, retain, out, **options)


def _summary(path: Path) -> str:
    """One line from the run's run.json."""
    import json

    report = json.loads((path / "run.json").read_text(encoding="utf-8"))
    if report["method"] == "unierase":
        return (f"{report['edits']} edit(s) of {report['requests']} requests, {report['seconds_per_edit']:.3f} s per "
                f"edit, {report['changed_fraction']:.4%} of the parameters changed")
    losses = ", ".join(f"{name} {value:.4f}" for name, value in report["final_losses"].items())
    return f"{report['steps']} steps in {report['train_seconds']:.1f} s, final losses: {losses}"
