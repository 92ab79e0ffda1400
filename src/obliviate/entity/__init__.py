"""Entity-level unlearning: forget sets with controllable coverage, held-out probes, runs that keep them,
pseudo-entity injection."""

from obliviate.entity.forget_sets import EntityForgetSet, build_entity_forget_set, knowundo_layout
from obliviate.entity.inject import inject
from obliviate.entity.probe import exact_match, probe_entity
from obliviate.entity.runs import EntityRun, unlearn_entities

__all__ = ["EntityForgetSet", "EntityRun", "build_entity_forget_set", "exact_match", "inject", "knowundo_layout",
           "probe_entity", "unlearn_entities"]
