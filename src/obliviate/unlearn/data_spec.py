"""What `--forget` / `--retain` may name, resolved to records.

* a data file (or hub dataset): QA records from .json / .jsonl / .parquet (`load_qa`), or text
  records (RMU-style corpora) from .txt files and files whose rows have only a "text" field;
* `tofu:SPLIT`: a TOFU split (`load_tofu`), e.g. `tofu:forget10`, `tofu:retain90`;
* a selection of the world's people QA (trained phrasing):
  `world:forget` (the standard 10% forget split, `World.forget_entity_ids(0.1)`), `world:retain`
  (everyone else), `world:neighbours` (neighbours of the forget people), `world:entities=0-2,5`;
  add `:private` or `:public` to keep one visibility, e.g. `world:forget:private`.
  The world is `--world DIR`, else the one the model directory records (`world.recorded_world`).
"""

from __future__ import annotations

from pathlib import Path

from obliviate.data import load_qa, load_texts, load_tofu, read_rows
from obliviate.errors import ObliviateError
from obliviate.unlearn.batches import Records
from obliviate.world import World, recorded_world

FORGET_FRACTION = 0.1
VISIBILITIES = ("private", "public")
WORLD_SELECTIONS = "forget, retain, neighbours, entities=0-2,5"


def load_data(spec: str, world: str | Path | None = None, model: str | Path | None = None) -> Records:
    """The records `spec` names (see the module docstring); `world` / `model` locate the world."""
    if spec.startswith("tofu:"):
        return load_tofu(spec.removeprefix("tofu:"))
    if spec.startswith("world:"):
        return _world_records(spec, _find_world(spec, world, model))
    return _file_records(spec)


def _file_records(spec: str) -> Records:
    if Path(spec).suffix.lower() == ".txt":
        return load_texts(spec)
    first = read_rows(spec)[0]
    if "text" in first and not {"question", "labels"} & set(first):
        return load_texts(spec)
    return load_qa(spec)


def _find_world(spec: str, world: str | Path | None, model: str | Path | None) -> World:
    if world is not None:
        return World(world)
    named = recorded_world(model)
    if named is None:
        raise ObliviateError(f"'{spec}' needs a world: pass --world DIR (the model records none)")
    return World(named)


def _world_records(spec: str, world: World) -> Records:
    selection, _, visibility = spec.removeprefix("world:").partition(":")
    if visibility and visibility not in VISIBILITIES:
        raise ObliviateError(f"'{spec}': unknown visibility '{visibility}' (choose private or public)")
    forget_ids = world.forget_entity_ids(FORGET_FRACTION)
    if selection == "forget":
        ids = forget_ids
    elif selection == "retain":
        ids = world.retain_entity_ids(forget_ids)
    elif selection == "neighbours":
        ids = world.neighbour_ids(forget_ids)
    elif selection.startswith("entities="):
        ids = _entity_ids(spec, selection.removeprefix("entities="), len(world.people))
    else:
        raise ObliviateError(f"'{spec}': unknown world selection '{selection}' (choose {WORLD_SELECTIONS})")
    return world.qa(entity_ids=ids, visibility=visibility or None)


def _entity_ids(spec: str, text: str, count: int) -> list[int]:
    """"0-2,5" → [0, 1, 2, 5], checked against the world's `count` people."""
    ids = []
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            ids += range(int(first), int(last or first) + 1)
    except ValueError:
        raise ObliviateError(f"'{spec}': expected entity ids like 0-2,5, got '{text}'") from None
    outside = [i for i in ids if not 0 <= i < count]
    if not ids or outside:
        got = f", got {outside[0]}" if outside else ""
        raise ObliviateError(f"'{spec}': entity ids must lie in 0-{count - 1}{got}")
    return sorted(set(ids))
