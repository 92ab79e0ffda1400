"""`obliviate eval`: run evaluation suites on a model and write the eval JSON; `obliviate suites` lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app


@app.command("eval")
def eval_command(
    model: Annotated[str, typer.Option("--model", help="Model directory or hub name.")],
    suite: Annotated[str, typer.Option("--suite", help="Suite name(s), comma-separated; see `obliviate suites`.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the eval JSON (atomically).")],
    data: Annotated[Optional[list[str]], typer.Option(
        "--data", help="Suite data option KEY=VALUE (repeatable); a bare VALUE is a lone suite's main input.")] = None,
    world: Annotated[Optional[Path], typer.Option(
        "--world", help="World directory (default: the one the tiny base model was trained on).")] = None,
    reference_eval: Annotated[Optional[Path], typer.Option(
        "--reference-eval", help="Eval JSON of a reference model (retain model, or before unlearning).")] = None,
    original: Annotated[Optional[str], typer.Option(
        "--original", help="The original model, which scores generations for reverse perplexity.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="At most N samples per set.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sequences per forward pass.")] = 32,
    label: Annotated[Optional[str], typer.Option("--label", help="A name for this run in reports.")] = None,
) -> None:
    """Evaluate a model on one or more suites and write the eval JSON."""
    from obliviate.eval.run import evaluate, parse_data_options

    result = evaluate(model, suite, data=parse_data_options(data or [], suite), reference=reference_eval,
                      original=original, world=world, limit=limit, batch_size=batch_size, label=label, out=out)
    for suite_name, metrics in result["metrics"].items():
        typer.echo(suite_name)
        for name, value in metrics.items():
            shown = "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
            typer.echo(f"  {name:<40} {shown}")
    typer.echo(f"wrote {out} ({result['seconds']:.0f} s)")


@app.command("suites")
def suites_command() -> None:
    """List the evaluation suites and their --data options."""
    from obliviate.eval.suites import LM_EVAL_PREFIX, get_suite, suite_names

    for name in suite_names():
        cls = get_suite(name)
        typer.echo(f"{name}: {cls.description}")
        for key, meaning in cls.data_keys.items():
            typer.echo(f"    --data {key}=…  {meaning}")
    typer.echo(f"{LM_EVAL_PREFIX}<task>: any lm-eval-harness task (needs `pip install 'obliviate[lmeval]'`)")
