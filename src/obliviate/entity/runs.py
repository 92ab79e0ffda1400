"""Entity-level unlearning runs: `obliviate unlearn --entity NAME [--coverage C]`.

    unlearn_entities("models/base", "npo_gd", ["Stuvern Klerekar"], "runs/npo", coverage=0.5)

The forget set is the entities' known QA at coverage C (`build_entity_forget_set`); their
neighbours are the default retain set; both train on a fact's `stated_answer` where it has one
(`entity_file.stated_records`). The run directory keeps what unlearning saw
(`entity_forget.jsonl`) and what it did not (`entity_probes.jsonl`: the uncovered attributes
and every held-out phrasing), and run.json's "entity" entry names both, so the `entity` eval
suite measures the held-out probes apart from the forget set (`EntityRun.load`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from obliviate.data import QARecord, load_qa
from obliviate.entity.entity_file import stated_records
from obliviate.entity.forget_sets import EntityForgetSet, build_entity_forget_set
from obliviate.errors import ObliviateError
from obliviate.unlearn import RunFiles, unlearn
from obliviate.world import World, recorded_world

FORGET_FILE = "entity_forget.jsonl"
PROBES_FILE = "entity_probes.jsonl"


def unlearn_entities(model: str | Path, method: str, names: list[str], out: str | Path, coverage: float = 1.0,
                     retain: str | list[QARecord] | None = None, config=None, *, world: str | Path | None = None,
                     seed: int = 0, **options) -> Path:
    """Unlearn the people `names` of the model's world (or `world`) at `coverage`; `retain` (default: their
    neighbours' QA) and `options` (overrides, save_adapter, resume, …) as for `obliviate.unlearn.unlearn`."""
    found = _world(model, world)
    split = build_entity_forget_set(found, names, coverage, seed)
    retain = stated_records(split.retain) if retain is None else retain
    return unlearn(model, method, stated_records(split.forget), retain, out, config,
                   world=found.root, extras=_run_files(found, split, seed), **options)


def _world(model: str | Path, world: str | Path | None) -> World:
    named = world if world is not None else recorded_world(model)
    if named is None:
        raise ObliviateError(f"--entity needs the world of {model}: pass --world DIR (the model records none)")
    return World(named)


def _run_files(world: World, split: EntityForgetSet, seed: int) -> RunFiles:
    entry = {"entities": [world.people[i]["name"] for i in split.entity_ids], "entity_ids": split.entity_ids,
             "coverage": split.coverage, "seed": seed, "forget": FORGET_FILE, "probes": PROBES_FILE}
    return RunFiles(files={FORGET_FILE: [r.to_dict() for r in split.forget],
                           PROBES_FILE: [r.to_dict() for r in split.probes]},
                    report={"entity": entry})


@dataclass
class EntityRun:
    """An entity run's split, as its run directory keeps it."""

    entity_ids: list[int]
    coverage: float
    forget: list[QARecord]  # what unlearning saw
    probes: list[QARecord]  # what it did not

    @classmethod
    def load(cls, run_dir: str | Path) -> EntityRun | None:
        """The split of the entity run in `run_dir`; None when `run_dir` is no such run."""
        run_json = Path(run_dir) / "run.json"
        entry = json.loads(run_json.read_text(encoding="utf-8")).get("entity") if run_json.is_file() else None
        if entry is None:
            return None
        return cls(entry["entity_ids"], entry["coverage"], load_qa(Path(run_dir) / entry["forget"]),
                   load_qa(Path(run_dir) / entry["probes"]))
