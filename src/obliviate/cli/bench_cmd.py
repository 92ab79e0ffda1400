"""`obliviate bench`: benchmarks end to end on their real data, with a leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli import app

bench_app = typer.Typer(help="Benchmarks end to end on their real data, with a leaderboard.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("tofu")
def tofu(
    data: Annotated[Path, typer.Option(help="The TOFU directory (forget01.json, retain90.json, …).")],
    split: Annotated[str, typer.Option(help="The forget split: forget01, forget05 or forget10.")] = "forget10",
    methods: Annotated[str, typer.Option(help="Comma-separated methods (default: every one that unlearns QA).")] = "",
    preset: Annotated[str, typer.Option(help="Model size and training: test, ci (with --authors) or small.")] = "test",
    authors: Annotated[Optional[int], typer.Option(
        help="Train on the split's authors and the first others, this many in all (default: all 200).")] = None,
    sweep: Annotated[Optional[list[str]], typer.Option(
        help="A grid per method, e.g. --sweep lr=1e-4,5e-4 --sweep epochs=2,5: keeps each method's best point.",
    )] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output directory (default: bench-tofu/<split>).")] = None,
    base_model: Annotated[Optional[str], typer.Option(
        help="A pretrained causal LM (a named offline model such as smollm2-135m, a directory or a hub name) to "
             "fine-tune into the full and retain models with TOFU's protocol (lr 1e-5, 5 epochs, batch 32, "
             "warm-up one epoch, weight decay 0.01: recipes/tofu_pretrained/finetune.yaml); unlearning then "
             "uses open-unlearning's TOFU settings (recipes/tofu_pretrained/unlearn.yaml). --preset sets only "
             "the evaluation's sample limit.")] = None,
    full_model: Annotated[Optional[str], typer.Option(
        help="Start from this full model (a directory or a hub name, e.g. "
             "open-unlearning/tofu_Llama-3.2-1B-Instruct_full) instead of training one; needs --retain-model.")] = None,
    retain_model: Annotated[Optional[str], typer.Option(
        help="The retain model that goes with --full-model (e.g. …_retain90 for forget10).")] = None,
    finetune_set: Annotated[Optional[list[str]], typer.Option(
        help="KEY=VALUE over the fine-tuning recipe of --base-model, e.g. --finetune-set epochs=10.")] = None,
) -> None:
    """Train (or fine-tune, or take) the full and retain models, unlearn the split with each method, write the
    leaderboard and report."""
    from obliviate.tofu_bench.leaderboard import UTILITY_SHARE, parse_sweep
    from obliviate.tofu_bench.bench import TofuBenchConfig, load_leaderboard, run_tofu_bench
    from obliviate.report.metrics import format_number

    config = TofuBenchConfig(data=data, out=out or Path("bench-tofu") / split, split=split, preset=preset,
                             methods=tuple(m.strip() for m in methods.split(",") if m.strip()), authors=authors,
                             sweep=parse_sweep(sweep or []), base_model=base_model, full_model=full_model,
                             retain_model=retain_model, finetune_overrides=tuple(finetune_set or []))
    result = run_tofu_bench(config)
    board = load_leaderboard(result)
    for row in board["reference"] + board["methods"]:
        metrics = row["metrics"]
        typer.echo(f"  {row['name']:<14} forget quality {format_number(metrics['forget_quality']):>8}  "
                   f"model utility {format_number(metrics['model_utility']):>6}  ({row['wall_seconds']:.0f} s)")
    typer.echo(f"best at utility ≥ {UTILITY_SHARE} × retain: {board['best_at_utility'] or 'none'}")
    typer.echo(f"leaderboard.md, leaderboard.json, report.html written to {result}")
