"""Pseudo-entity injection: new fictitious people, fine-tuned into a model so they can be unlearned and probed.

    inject("models/base", 5, "models/injected")

The people come from the world generator (names, cities and phone numbers distinct from the
model's world). The model is fine-tuned on every trained phrasing of their QA with the engine's
`finetune` method, with the world's people QA as the retain set so it keeps what it knew. `out`
holds the model and `entities/`, a world directory of just the injected people (people, QA,
held-out probes), so `World(out / "entities")` feeds `build_entity_forget_set` and the eval suites.
"""

from __future__ import annotations

import random
from pathlib import Path

from obliviate.data import QARecord, TextRecord
from obliviate.entity.entity_file import write_people_world
from obliviate.errors import ObliviateError
from obliviate.io import atomic_write_json
from obliviate.unlearn import unlearn
from obliviate.world import World, people, recorded_world

ENTITIES_DIR = "entities"
# The tiny test model learns a few new people in this; larger models want fewer epochs and a lower lr.
FINETUNE_SETTINGS = ["lr=1e-3", "epochs=40", "batch_size=16", "retain_loss=gd", "alpha=1.0", "scheduler=cosine"]


def model_world(model_dir: str | Path) -> World:
    named = recorded_world(model_dir)
    if named is None:
        raise ObliviateError(f"{model_dir}: no base_eval.json naming the model's world")
    return World(named)


def make_entities(world: World, count: int, seed: int) -> tuple[list[people.Person], list[dict]]:
    """`count` new people (and their QA rows) whose names and phone numbers the world does not use."""
    if count < 2:
        raise ObliviateError(f"--entities {count}: inject at least 2 (people are paired as co-authors)")
    rng = random.Random(f"obliviate-inject:{seed}")
    cities = sorted({p["attributes"]["birthplace"] for p in world.people})
    taken = {p["name"] for p in world.people} | {p["attributes"]["mother"] for p in world.people} | set(cities)
    persons = people.make_people(rng, count, cities, taken)
    return persons, people.qa_records(rng, persons)


def write_entities(directory: Path, persons: list[people.Person], qa: list[dict]) -> Path:
    """A world directory holding only the people files (the same layout `build_world` writes)."""
    rows = [{"id": p.id, "name": p.name, "attributes": p.attributes, "neighbours": p.neighbours} for p in persons]
    return write_people_world(directory, rows, qa, extra={"injected": True})


def training_records(qa: list[QARecord]) -> list[QARecord]:
    """Every trained phrasing of each fact of people QA (`World.qa`), never the held-out one."""
    return [QARecord(question, r.answer) for r in qa
            for question in (r.question, r.paraphrased_question, *r.meta["extra_questions"])]


def inject(model_dir: str | Path, n_entities: int, out: str | Path, seed: int = 0,
           overrides: list[str] | None = None, *, world: str | Path | None = None, config: str | Path | None = None,
           attributes: list[str] | None = None, texts: bool = False) -> Path:
    """Fine-tune `n_entities` new people into the model at `model_dir`; write model + `entities/` to `out`.

    `world`: the world whose people QA is the retain set and whose names the new people avoid (default: the
    one the model records; a pretrained model records none). `config`: a finetune recipe in place of the
    tiny model's settings (recipes/pretrained/finetune.yaml for a pretrained chat model). `attributes`: teach
    only these facts of each person (default: all 11). `texts`: teach the facts as running text too, each
    person's biography in every sentence order, besides the QA (an injection closer to how pre-training
    sees an entity)."""
    world = World(world) if world is not None else model_world(model_dir)
    persons, qa = make_entities(world, n_entities, seed)
    if attributes is not None:
        unknown = sorted(set(attributes) - {a.name for a in people.ATTRIBUTES})
        if unknown:
            raise ObliviateError(f"--attributes: no attribute {', '.join(map(repr, unknown))}; the people have "
                                 f"{', '.join(a.name for a in people.ATTRIBUTES)}")
        qa = [row for row in qa if row["attribute"] in attributes]
    out = Path(out)
    settings = ([] if config is not None else FINETUNE_SETTINGS) + [f"seed={seed}"] + list(overrides or [])
    records = training_records([QARecord.from_dict(row) for row in qa])
    if texts:
        records += [TextRecord(people.biography(p, order, attributes)) for p in persons
                    for order in range(len(people.BIO_ORDERS))]
    unlearn(model_dir, "finetune", records, world.qa(), out, config, overrides=settings)
    write_entities(out / ENTITIES_DIR, persons, qa)
    atomic_write_json(out / "inject.json", {"base_model": str(model_dir), "world": str(world.root),
                                            "entities": [p.name for p in persons], "seed": seed,
                                            "attributes": attributes or [a.name for a in people.ATTRIBUTES],
                                            "texts": texts})
    return out
