"""What every attack gets: its settings, the forget set, the world, and the models under attack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from obliviate.data import QARecord
from obliviate.errors import ObliviateError
from obliviate.world import World

Role = Literal["attacked", "upper", "floor"]


@dataclass
class AttackSettings:
    """Budgets and knobs; `obliviate attack --set key=value` overrides them."""

    seed: int = 0
    batch_size: int = 32
    # relearn: fine-tune on this fraction of the forget records, measure the rest
    relearn_fraction: float = 0.3
    relearn_steps: int = 10
    relearn_lr: float = 1e-3
    # gcg: a per-question adversarial suffix
    gcg_questions: int = 12  # the first N forget questions (the search is the costly part)
    gcg_suffix_tokens: int = 5
    gcg_steps: int = 5  # on the tiny model, 10+ steps force half the answers out of a model that never saw them
    gcg_top_k: int = 32
    gcg_candidates: int = 64
    # linear probe: categorical attributes, one decoder layer (None: the last)
    probe_attributes: list[str] = field(default_factory=lambda: ["profession", "birthplace", "health_condition"])
    probe_layer: int | None = None
    in_context_examples: int = 3


@dataclass
class Subject:
    """One model under attack, in its role: the unlearned model, or one of the two controls."""

    role: Role
    path: Path
    model: object
    tokenizer: object

    @classmethod
    def load(cls, role: Role, path: str | Path) -> Subject:
        from obliviate.models import load_model, load_tokenizer

        return cls(role, Path(path), load_model(path), load_tokenizer(path))


@dataclass
class AttackContext:
    forget: list[QARecord]
    settings: AttackSettings
    original: Subject
    world: World | None = None

    def need_world(self, attack: str) -> World:
        if self.world is None:
            raise ObliviateError(f"attack '{attack}' needs the world the facts come from: pass --world DIR")
        return self.world

    def forget_entity_ids(self) -> list[int]:
        return sorted({r.meta["entity_id"] for r in self.forget if "entity_id" in r.meta})
