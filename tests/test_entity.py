"""Entity-level unlearning: coverage-controlled forget sets, held-out probes, pseudo-entity injection."""

from __future__ import annotations

import pytest

from obliviate.entity import build_entity_forget_set, exact_match, inject, probe_entity
from obliviate.models import load_model, load_tokenizer
from obliviate.unlearn import unlearn
from obliviate.world import World


def names(world, ids):
    return [world.people[i]["name"] for i in ids]


@pytest.mark.parametrize("coverage", [0.25, 0.5, 1.0])
def test_coverage_split_is_disjoint_and_probes_never_in_the_forget_set(test_world, coverage):
    chosen = names(test_world, [0, 1])
    split = build_entity_forget_set(test_world, chosen, coverage, seed=3)
    facts = lambda records: {(r.meta["entity_id"], r.attribute) for r in records}  # noqa: E731
    attributes = len(facts(test_world.qa(entity_ids=[0])))
    assert len(split.forget) == 2 * -(-coverage * attributes // 1)
    assert not facts(split.forget) & facts(split.uncovered)
    assert facts(split.forget) | facts(split.uncovered) == facts(test_world.qa(entity_ids=[0, 1]))
    trained_questions = {r.question for r in split.forget}
    assert not trained_questions & {r.question for r in split.probes}
    assert len(split.heldout_phrasings) == 2 * attributes
    assert {r.meta["entity_id"] for r in split.neighbours}.isdisjoint({0, 1}) and split.neighbours
    assert build_entity_forget_set(test_world, chosen, coverage, seed=3) == split


def test_unlearning_at_half_coverage_is_measured_apart_on_forget_and_held_out_probes(test_world, test_model_dir,
                                                                                      tmp_path, figure):
    split = build_entity_forget_set(test_world, names(test_world, [0, 1, 2]), 0.5, seed=0)
    out = unlearn(test_model_dir, "graddiff", split.forget, split.retain, tmp_path / "graddiff",
                  overrides=["lr=5e-4", "alpha=3", "max_steps=38"])
    after = probe_entity(load_model(out), load_tokenizer(out), split)
    assert set(after) >= {"forget", "uncovered", "probes", "neighbours"}
    # Before: 1.0 on every set. After 38 steps, 1 (avx2, avx512) to 3 (default build) of the 18 forget questions
    # are still answered, and 0.74 (default) to 0.89 (avx2) of the 220 neighbour questions.
    figure("forget exact match", after["forget"], at_most=0.25)
    figure("neighbours exact match", after["neighbours"], at_least=0.65)
    # How much of the uncovered half goes with it is the study of bench/entity_coverage.py, not a test: at this
    # one point it moves with the build (uncovered exact match 0.13 to 0.40, docs/test_builds.md).


@pytest.mark.slow
def test_injection_teaches_the_model_new_people(test_model_dir, tmp_path, figure):
    out = inject(test_model_dir, 3, tmp_path / "injected", seed=1)
    injected = World(out / "entities")
    assert len(injected.people) == 3
    before = load_model(test_model_dir), load_tokenizer(test_model_dir)
    after = load_model(out), load_tokenizer(out)
    figure("injected QA exact match before", exact_match(*before, injected.qa()), at_most=0.1)
    figure("injected QA exact match after", exact_match(*after, injected.qa()), at_least=0.9)
    figure("injected probes exact match after", exact_match(*after, injected.qa(probes=True)), at_least=0.7)
    forget_set = build_entity_forget_set(injected, [injected.people[0]["name"]], 0.5)
    figure("injected forget set exact match after", probe_entity(*after, forget_set)["forget"], at_least=0.9)
