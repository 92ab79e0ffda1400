"""The whole story on the embedded default: world → base model → answers (extended by later steps)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from obliviate.io import cache_root
from obliviate.models.tiny import build_base_model, get_preset
from obliviate.world import World, build_world


def demo_world(preset_name: str, seed: int = 0) -> World:
    """The world the demo uses for a preset, built once into the cache."""
    preset = get_preset(preset_name)
    path = cache_root() / "worlds" / f"seed{seed}-n{preset.world_entities}"
    if not (path / "world.json").is_file():
        build_world(path, seed=seed, entities=preset.world_entities)
    return World(path)


def run_demo(preset_name: str = "test", questions: int = 8, console: Console | None = None) -> Path:
    from obliviate.eval.generation import generate_answers
    from obliviate.models import load_model, load_tokenizer
    from obliviate.prompts import answers_match

    console = console or Console()
    world = demo_world(preset_name)
    console.print(f"[bold]1. world[/bold] {world.root} — {len(world.people)} people, {len(world.domain_names)} crafts")
    model_dir = build_base_model(world.root, preset_name)
    console.print(f"[bold]2. base model[/bold] {model_dir}")
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    records = world.qa()[:: max(1, len(world.qa()) // questions)][:questions]
    answers = generate_answers(model, tokenizer, [r.question for r in records])
    table = Table(title="The base model answers questions about the world")
    for column in ("question", "reference", "model", "ok"):
        table.add_column(column)
    for record, answer in zip(records, answers):
        table.add_row(record.question, record.answer, answer, "✓" if answers_match(answer, record.answer) else "✗")
    console.print(table)
    return model_dir
