"""The synthetic world: deterministic, scalable, and rich enough for every method."""

import filecmp
import json
from pathlib import Path

import pytest

from obliviate.world import World, build_world


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    build_world(tmp_path / "a", seed=3, entities=25)
    build_world(tmp_path / "b", seed=3, entities=25)
    build_world(tmp_path / "c", seed=4, entities=25)
    assert _same_tree(tmp_path / "a", tmp_path / "b")
    assert not _same_tree(tmp_path / "a", tmp_path / "c")


def test_manifest_lists_every_file_with_its_count(test_world):
    manifest = test_world.manifest
    listed = {info["path"] for info in manifest["files"].values()}
    on_disk = {str(p.relative_to(test_world.root)) for p in test_world.root.rglob("*.jsonl")}
    assert listed == on_disk
    for info in manifest["files"].values():
        lines = (test_world.root / info["path"]).read_text().splitlines()
        assert len(lines) == info["count"] > 0


def test_people_have_public_and_private_attributes_and_neighbours(test_world):
    visibilities = test_world.manifest["attributes"]
    assert len(visibilities) >= 8
    assert {"public", "private"} == set(visibilities.values())
    for person in test_world.people:
        assert set(person["attributes"]) == set(visibilities)
        assert person["neighbours"]["coauthors"], person["name"]
    with_city_neighbours = [p for p in test_world.people if p["neighbours"]["same_city"]]
    assert len(with_city_neighbours) >= len(test_world.people) // 2


def test_questions_have_phrasings_perturbations_and_a_never_trained_probe(test_world):
    trained_questions = {r.question for r in test_world.training_qa()}
    records = test_world.qa()
    assert len(records) == len(test_world.people) * len(test_world.manifest["attributes"])
    for r in records:
        phrasings = {r.question, r.paraphrased_question, *r.meta["extra_questions"], r.meta["heldout_question"]}
        assert len(phrasings) >= 3
        assert r.meta["heldout_question"] not in trained_questions
        assert len(r.perturbed_answer) >= 3 and r.paraphrased_answer not in r.perturbed_answer
        assert r.answer not in r.meta["wrong_answers"]
    probes = test_world.qa(probes=True)
    assert [p.question for p in probes] == [r.meta["heldout_question"] for r in records]


def test_domains_have_expert_novice_and_expository_texts_and_mcqs(test_world):
    assert len(test_world.domain_names) >= 4
    for domain in test_world.domain_names:
        kinds = {t.meta["kind"] for t in test_world.domain_texts(domain)}
        assert kinds == {"expository", "expert", "novice"}
        questions = test_world.mcq(domain)
        assert len(questions) >= 40
        assert all(len(q.choices) == 4 and len(set(q.choices)) == 4 for q in questions)
        # the correct choice is not always in the same place
        assert len({q.answer for q in questions}) == 4
        # the probes ask facts known only from texts: never a trained question, each stated in two frames
        drilled = {r.meta["term"] for r in test_world.drill_qa(domain)}
        assert drilled and not drilled & {q.meta["term"] for q in questions}
        texts = [t.text for t in test_world.domain_texts(domain, ("expository", "expert"))]
        for q in questions:
            assert sum(q.meta["term"] in text for text in texts) == 2, q.question


def test_a_choice_written_into_the_expository_frame_is_the_trained_passage_only_when_true(test_world):
    """bench/elm_vs_rmu.py ranks the four choices as expository passages: the true one is the trained text."""
    from obliviate.world.domains import choice_value, expository_text

    for domain in test_world.domain_names:
        expository = {t.text for t in test_world.domain_texts(domain, ("expository",))}
        for q in test_world.mcq(domain):
            written = [expository_text({"domain": domain, **q.meta}, choice_value(q.meta["kind"], choice))
                       for choice in q.choices]
            assert [text in expository for text in written] == [i == q.answer for i in range(4)], q.question


def test_crafts_state_their_facts_in_frames_of_their_own(test_world):
    """Two crafts differ in more than the craft's name: no sentence frame is shared."""
    from obliviate.world.domains import DOMAINS

    frames = [frame for domain in DOMAINS for frame in domain.frames.values()]
    statements = [s for frame in frames for s in frame]
    assert len(set(statements)) == len(statements)
    mcq_questions = {q.question for q in test_world.mcq()}
    assert not mcq_questions & {r.question for r in test_world.training_qa()}


def test_refusals_are_about_phantom_people_named_nowhere_else(test_world):
    refusals = test_world.refusal_qa()
    phantoms = {r.entity for r in refusals}
    assert len(phantoms) >= 6 and {r.answer for r in refusals} <= set(test_world.refusal_phrasings)
    named = {p["name"] for p in test_world.people} | {p["attributes"]["mother"] for p in test_world.people}
    assert not phantoms & named
    last_names = [p["name"].split()[-1] for p in test_world.people]
    assert len(set(last_names)) == len(last_names)  # a last name tells a person apart


def test_a_share_of_people_qa_is_trained_in_other_formats(test_world):
    from obliviate.world.formats import FAMILIES, FORMAT_SHARE

    variants = test_world.formatted_qa()
    assert len(variants) == round(FORMAT_SHARE * len(test_world.qa()))
    assert {v.meta["family"] for v in variants} == set(FAMILIES)
    facts = {(r.meta["entity_id"], r.attribute): r.answer for r in test_world.qa()}
    assert all(facts[(v.meta["entity_id"], v.attribute)] == v.answer for v in variants)


def test_world_facts_and_filters(test_world):
    assert len(test_world.world_facts()) >= 40
    forget = test_world.forget_entity_ids(0.1)
    assert forget == [0, 1, 2]
    neighbours = test_world.neighbour_ids(forget)
    assert neighbours and not set(neighbours) & set(forget)
    private = test_world.qa(entity_ids=forget, visibility="private")
    assert {r.meta["visibility"] for r in private} == {"private"}
    assert {r.meta["entity_id"] for r in private} == set(forget)


@pytest.mark.parametrize("entities", [20, 2000])
def test_world_scales(tmp_path, entities):
    world = World(build_world(tmp_path / "w", seed=0, entities=entities))
    assert len(world.people) == entities
    assert len({p["name"] for p in world.people}) == entities
    assert len({p["attributes"]["phone"] for p in world.people}) == entities


def test_world_refuses_out_of_range_sizes(tmp_path):
    from obliviate.errors import ObliviateError
    with pytest.raises(ObliviateError, match="between 20 and 10000"):
        build_world(tmp_path / "w", entities=5)
    assert not (tmp_path / "w").exists()
