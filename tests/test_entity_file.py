"""Entities from a user's file: reading it, filtering by what a model knows, its world, `--entities` on the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from obliviate.entity import build_entity_forget_set, inject
from obliviate.entity.entity_file import (
    entity_world,
    famous_people_file,
    keep_known,
    load_entities,
    stated_records,
    world_entities,
    write_entity_file,
)
from obliviate.entity.inject import make_entities, write_entities
from obliviate.errors import DataError, ObliviateError
from obliviate.eval.run import evaluate
from obliviate.world import World


def entity(name, neighbours=(), facts=2, heldout=True):
    return {"name": name, "neighbours": list(neighbours),
            "facts": [{"attribute": f"a{k}", "question": f"Q{k} about {name}?", "answer": f"{name} {k}",
                       **({"heldout_question": f"H{k} about {name}?"} if heldout else {})} for k in range(facts)]}


def write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_packaged_famous_people_have_eight_facts_each_and_their_group_as_neighbours():
    entities = load_entities(famous_people_file())
    assert len(entities) == 25
    assert all(len(e.facts) == 8 and all(f.heldout_question for f in e.facts) for e in entities)
    einstein = next(e for e in entities if e.name == "Albert Einstein")
    assert "Isaac Newton" in einstein.neighbours and "William Shakespeare" not in einstein.neighbours
    groups = {frozenset((e.name, *e.neighbours)) for e in entities}
    assert sorted(len(g) for g in groups) == [4, 5, 5, 5, 6]  # characters, writers, leaders, artists, scientists


@pytest.mark.parametrize(("row", "field", "message"), [
    ({"name": "A", "facts": [{"answer": "x"}]}, "facts[0].question", "missing required field"),
    ({"name": "A", "facts": [{"question": "q?", "answer": ""}]}, "facts[0].answer", "empty"),
    ({"name": "A", "facts": []}, "facts", "non-empty list"),
    ({"name": "A", "facts": [{"question": "q?", "answer": "x", "extra": 1}]}, "facts[0].extra", "unknown field"),
    ({"name": "A", "neighbours": "B", "facts": [{"question": "q?", "answer": "x"}]}, "neighbours", "list"),
    ({"name": "A", "neighbours": ["Nobody"], "facts": [{"question": "q?", "answer": "x"}]}, "neighbours",
     "no entity named 'Nobody'"),
    ({"facts": [{"question": "q?", "answer": "x"}]}, "name", "missing required field"),
])
def test_a_malformed_entity_is_one_error_naming_file_record_and_field(tmp_path, row, field, message):
    path = write(tmp_path / "entities.jsonl", [entity("Z"), row])
    with pytest.raises(DataError) as caught:
        load_entities(path)
    assert (caught.value.field, str(path) in str(caught.value)) == (field, True)
    assert message in caught.value.reason and caught.value.record is not None


def test_two_entities_of_one_name_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"e.jsonl, line 2, field 'name': a second entity named 'a'"):
        load_entities(write(tmp_path / "e.jsonl", [entity("A"), entity("a")]))


def test_keep_known_keeps_the_phrasings_answered_right_with_the_models_answer(tmp_path):
    entities = load_entities(write(tmp_path / "e.jsonl", [entity("A", ["B"], facts=3), entity("B", ["A"])]))
    right = {"Q0 about A?", "H0 about A?", "H1 about A?"}  # A: fact 0 both, fact 1 held-out only, fact 2 none

    def generate(questions):
        assert len(questions) == 10  # every phrasing in one call
        return [f"It is {'A ' + q[1] if q in right else 'unknown'}." for q in questions]

    kept = keep_known(entities, generate)
    assert [e.name for e in kept] == ["A"] and kept[0].neighbours == ()  # B knows nothing: gone, and as neighbour
    assert [(f.attribute, f.question, f.heldout_question, f.stated_answer) for f in kept[0].facts] == [
        ("a0", "Q0 about A?", "H0 about A?", "It is A 0."), ("a1", "H1 about A?", None, "It is A 1.")]
    world = entity_world(kept, tmp_path / "world")
    forget = build_entity_forget_set(world, ["A"], 1.0).forget
    assert [r.answer for r in forget] == ["A 0", "A 1"]  # measured against the reference
    assert [r.answer for r in stated_records(forget)] == ["It is A 0.", "It is A 1."]  # trained on the model's own


def test_an_entity_world_splits_by_coverage_with_held_out_probes_and_related_neighbours(tmp_path):
    entities = load_entities(write(tmp_path / "e.jsonl", [
        entity("A", ["B"], facts=4), entity("B", ["A"], facts=2, heldout=False), entity("C", facts=2)]))
    world = entity_world(entities, tmp_path / "world")
    assert world.neighbour_ids([0]) == [1] and world.neighbour_ids([2]) == []
    split = build_entity_forget_set(world, ["A"], 0.5, seed=0)
    assert len(split.forget) == 2 and len(split.uncovered) == 2 and len(split.heldout_phrasings) == 4
    assert {r.question for r in split.heldout_phrasings} == {f"H{k} about A?" for k in range(4)}
    assert {r.question for r in split.neighbours} == {"Q0 about B?", "Q1 about B?"}
    assert entity_world(entities, tmp_path / "world").fingerprint == world.fingerprint  # written once


def test_a_worlds_people_round_trip_through_an_entity_file(tmp_path, test_world):
    injected = World(write_entities(tmp_path / "people", *make_entities(test_world, 4, seed=2)))
    entities = world_entities(injected)
    again = entity_world(load_entities(write_entity_file(tmp_path / "e.jsonl", entities)), tmp_path / "w")
    assert [p["name"] for p in again.people] == [p["name"] for p in injected.people]
    for person in range(4):
        assert again.neighbour_ids([person]) == injected.neighbour_ids([person])
    assert [(r.question, r.answer) for r in again.qa(probes=True)] == [
        (r.question, r.answer) for r in injected.qa(probes=True)]


def test_inject_teaches_only_the_chosen_attributes_as_qa_and_text_and_refuses_unknown_ones(test_model_dir, test_world, tmp_path):
    with pytest.raises(ObliviateError, match="no attribute 'shoe_size'"):
        inject(test_model_dir, 2, tmp_path / "bad", attributes=["profession", "shoe_size"])
    out = inject(test_model_dir, 2, tmp_path / "injected", world=test_world.root, attributes=["profession", "award"],
                 overrides=["epochs=1"], texts=True)
    people = World(out / "entities")
    assert {r.attribute for r in people.qa()} == {"profession", "award"} and len(people.qa(probes=True)) == 4
    recorded = json.loads((out / "inject.json").read_text())
    assert recorded["attributes"] == ["profession", "award"] and recorded["texts"] is True
    # 2 people × 2 facts × 3 trained phrasings, and each person's biography in both sentence orders
    assert json.loads((out / "run.json").read_text())["forget_size"] == 12 + 4


def test_unlearn_entity_takes_the_entities_from_a_file(test_model_dir, tmp_path):
    import obliviate.cli.unlearn_cmd as cli  # registers `unlearn` on the app

    path = write(tmp_path / "e.jsonl", [entity("Ada", ["Bo"], facts=4), entity("Bo", ["Ada"]), entity("Cy")])
    out = tmp_path / "run"
    result = CliRunner().invoke(cli.app, [
        "unlearn", "--model", str(test_model_dir), "--method", "graddiff", "--entity", "Ada", "--entities", str(path),
        "--coverage", "0.5", "--out", str(out), "--set", "max_steps=2"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "run.json").read_text())
    assert report["entity"]["entities"] == ["Ada"] and report["forget_size"] == 2 and report["retain_size"] == 2
    probes = [json.loads(line)["question"] for line in (out / "entity_probes.jsonl").read_text().splitlines()]
    assert len(probes) == 2 + 4 and "H0 about Ada?" in probes
    metrics = evaluate(str(out), "entity")["metrics"]["entity"]  # the run records the entities' world
    assert (metrics["forget/n"], metrics["probes/n"], metrics["neighbours/n"]) == (2, 6, 2)

    for extra, message in ((["--world", str(tmp_path)], "pass one of --world DIR and --entities FILE"),
                           ([], "pass --entity too")):
        entity_args = [] if not extra else ["--entity", "Ada"]
        result = CliRunner().invoke(cli.app, ["unlearn", "--model", str(test_model_dir), "--method", "graddiff",
                                              "--entities", str(path), "--out", str(tmp_path / "x"), *entity_args,
                                              *extra, *([] if extra else ["--forget", "world:forget"])])
        assert isinstance(result.exception, ObliviateError) and message in str(result.exception), result.output
