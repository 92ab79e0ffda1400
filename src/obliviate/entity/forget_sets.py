"""Forget sets for whole entities, covering a chosen fraction of what the model knows about them.

Coverage c: for each entity, ⌈c·A⌉ of its A attributes (chosen at random per entity and seed) go
into the forget set with their trained phrasing. Everything else about the entity is held out
as probes: the uncovered attributes (trained phrasing) and every attribute's held-out phrasing,
which no training ever saw. The entities' neighbours are the default retain set.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from obliviate.data import QARecord
from obliviate.errors import ObliviateError
from obliviate.world import World


@dataclass
class EntityForgetSet:
    entity_ids: list[int]
    coverage: float
    forget: list[QARecord]  # covered attributes, trained phrasing
    uncovered: list[QARecord]  # the other attributes, trained phrasing (never unlearned on)
    heldout_phrasings: list[QARecord]  # every attribute, the held-out phrasing (never trained on)
    neighbours: list[QARecord]  # the neighbours' QA: the default retain set

    @property
    def probes(self) -> list[QARecord]:
        return self.uncovered + self.heldout_phrasings

    @property
    def retain(self) -> list[QARecord]:
        return self.neighbours


def build_entity_forget_set(world: World, names: list[str], coverage: float, seed: int = 0) -> EntityForgetSet:
    if not 0 < coverage <= 1:
        raise ObliviateError(f"coverage {coverage}: must lie in (0, 1]")
    ids = world.entity_ids(names)
    trained = world.qa(entity_ids=ids)
    covered = set()
    for entity_id in ids:
        attributes = sorted({r.attribute for r in trained if r.meta["entity_id"] == entity_id})
        chosen = random.Random(f"{seed}:{entity_id}").sample(attributes, math.ceil(coverage * len(attributes)))
        covered |= {(entity_id, attribute) for attribute in chosen}

    def is_covered(record: QARecord) -> bool:
        return (record.meta["entity_id"], record.attribute) in covered

    return EntityForgetSet(ids, coverage, [r for r in trained if is_covered(r)],
                           [r for r in trained if not is_covered(r)], world.qa(entity_ids=ids, probes=True),
                           world.qa(entity_ids=world.neighbour_ids(ids)))


def knowundo_layout(world: World, entity_ids: list[int]) -> dict:
    """The people's private facts to unlearn and their public facts to retain, in the KnowUnDo layout:
    train = the trained phrasing, val = the held-out phrasing."""
    def rows(visibility: str, probes: bool) -> list[dict]:
        return [{"text": r.question, "labels": r.answer}
                for r in world.qa(entity_ids=entity_ids, visibility=visibility, probes=probes)]

    return {split: {"train": rows(visibility, False), "val": rows(visibility, True)}
            for split, visibility in (("unlearn", "private"), ("retention", "public"))}
