"""Entities from a file the user gives: real people a pretrained model knows, characters, anything named.

One JSON object per line (JSONL), or a JSON list of them:

    {"name": "Albert Einstein", "neighbours": ["Isaac Newton", "Marie Curie"],
     "facts": [{"attribute": "known_for", "question": "Which theory is Albert Einstein best known for?",
                "heldout_question": "Albert Einstein is famous for which scientific theory?",
                "answer": "relativity"}, ...]}

`neighbours` (optional) names other entities of the file: related entities whose facts are the
default retain set and are measured for retention. Each fact has a `question` (the phrasing an
unlearning run may train on), an `answer` and optionally a `heldout_question`, a second phrasing of the
same fact that no run trains on. `attribute` names the fact (default: fact1, fact2, …). A fact's optional
`stated_answer` is how the model itself answers the question (a pretrained chat model answers in sentences,
"Albert Einstein is best known for his theory of relativity."): unlearning runs train on it in place of the
short `answer`, which stays the reference the model's answers are checked against (`stated_records`).

`entity_world` turns the entities into a world directory of just these people, so everything
that takes a world's people takes them: `build_entity_forget_set` (coverage, held-out probes,
neighbours), `obliviate unlearn --entity NAME --entities FILE`, the `entity` eval suite.

`famous_people_file()` is such a file that ships with the package: 25 well-known real people and
fictional characters in five groups (scientists, writers, leaders, artists, characters; each entity's
neighbours are its group), 8 facts each with a held-out phrasing, written for this project.

`keep_known` filters the facts by the model's own answers before unlearning, as the entity-level
unlearning studies do: a phrasing stays when the model's greedy answer contains the reference answer
(`answer_contained`); a fact with no such phrasing is dropped, and an entity left with no facts too.
It records the model's answer as the fact's `stated_answer`, so that what is unlearned (and what the
neighbours' retain term holds) is the knowledge as the model states it, as RWKU builds its forget corpus
from the model's own generations about each target.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field, replace
from pathlib import Path

from obliviate.data import QARecord
from obliviate.data.readers import read_located_rows
from obliviate.data.schema import json_type
from obliviate.errors import DataError, ObliviateError
from obliviate.eval.answer_match import answer_contained
from obliviate.io import (
    atomic_directory,
    atomic_write_json,
    atomic_write_jsonl,
    cache_root,
    content_digest,
)
from obliviate.world import World
from obliviate.world.build import WORLD_FORMAT

ENTITY_FIELDS = ("name", "neighbours", "facts")
FACT_FIELDS = ("attribute", "question", "answer", "heldout_question", "stated_answer")


@dataclass(frozen=True)
class Fact:
    attribute: str
    question: str
    answer: str
    heldout_question: str | None = None
    stated_answer: str | None = None  # the model's own answer to `question`, recorded by keep_known


@dataclass(frozen=True)
class Entity:
    name: str
    facts: tuple[Fact, ...]
    neighbours: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        facts = [{"attribute": f.attribute, "question": f.question, "answer": f.answer,
                  **({"heldout_question": f.heldout_question} if f.heldout_question else {}),
                  **({"stated_answer": f.stated_answer} if f.stated_answer else {})} for f in self.facts]
        return {"name": self.name, "neighbours": list(self.neighbours), "facts": facts}


def famous_people_file() -> Path:
    return Path(str(importlib.resources.files("obliviate") / "entity" / "famous_people.jsonl"))


def load_entities(path: str | Path) -> list[Entity]:
    """The entities of a JSONL / JSON file; a malformed one is a one-line error naming the record and field."""
    rows = read_located_rows(Path(path))
    entities = [_entity(row.data, row.source, row.record) for row in rows]
    check_entities(entities, str(path), [row.record for row in rows])
    return entities


def check_entities(entities: list[Entity], source: str, records: list | None = None) -> None:
    """Names unique (case-insensitively, as `World.entity_ids` looks them up); neighbours among them. `records`:
    where each entity stands in `source` (default: its index)."""
    records = records if records is not None else list(range(len(entities)))
    seen: set[str] = set()
    for record, entity in zip(records, entities):
        if entity.name.lower() in seen:
            raise DataError(source, f"a second entity named {entity.name!r}", record=record, field="name")
        seen.add(entity.name.lower())
    for record, entity in zip(records, entities):
        unknown = [n for n in entity.neighbours if n.lower() not in seen]
        if unknown:
            raise DataError(source, f"no entity named {', '.join(map(repr, unknown))} in this file", record=record,
                            field="neighbours")


def _entity(row, source: str, record) -> Entity:
    def error(message: str, name: str | None = None) -> DataError:
        return DataError(source, message, record=record, field=name)

    if not isinstance(row, dict):
        raise error(f"expected a JSON object, got {json_type(row)}")
    unknown = sorted(set(row) - set(ENTITY_FIELDS))
    if unknown:
        raise error(f"unknown field (an entity has {', '.join(ENTITY_FIELDS)})", unknown[0])
    name = _text(row, "name", error)
    neighbours = row.get("neighbours", [])
    if not isinstance(neighbours, list) or not all(isinstance(n, str) and n.strip() for n in neighbours):
        raise error("expected a list of entity names", "neighbours")
    facts = row.get("facts")
    if not isinstance(facts, list) or not facts:
        raise error("expected a non-empty list of facts", "facts")
    parsed = tuple(_fact(fact, number, error) for number, fact in enumerate(facts))
    attributes = [f.attribute for f in parsed]
    repeated = next((a for a in attributes if attributes.count(a) > 1), None)
    if repeated is not None:
        raise error(f"attribute {repeated!r} appears twice (each fact needs its own)", "facts")
    return Entity(name, parsed, tuple(neighbours))


def _fact(fact, number: int, error) -> Fact:
    where = f"facts[{number}]"
    if not isinstance(fact, dict):
        raise error(f"expected a JSON object, got {json_type(fact)}", where)
    unknown = sorted(set(fact) - set(FACT_FIELDS))
    if unknown:
        raise error(f"unknown field (a fact has {', '.join(FACT_FIELDS)})", f"{where}.{unknown[0]}")
    heldout = _text(fact, "heldout_question", error, where, required=False)
    attribute = _text(fact, "attribute", error, where, required=False) or f"fact{number + 1}"
    return Fact(attribute, _text(fact, "question", error, where), _text(fact, "answer", error, where), heldout,
                _text(fact, "stated_answer", error, where, required=False))


def _text(row: dict, name: str, error, where: str = "", required: bool = True) -> str | None:
    shown = f"{where}.{name}" if where else name
    if name not in row:
        if required:
            raise error("missing required field", shown)
        return None
    value = row[name]
    if not isinstance(value, str) or not value.strip():
        raise error(f"expected a non-empty string, got {json_type(value) if not isinstance(value, str) else 'an empty one'}",
                    shown)
    return value


def keep_known(entities: list[Entity], generate, match=answer_contained) -> list[Entity]:
    """The facts whose phrasings the model answers right: `generate(questions) -> answers` (one call for every
    phrasing), right when `match(answer, reference)`. A fact right in only its held-out phrasing keeps that as
    its question; the model's answer to the question becomes the fact's `stated_answer`. Neighbours that lose
    every fact are dropped from the lists."""
    phrasings = [(f, q) for e in entities for f in e.facts for q in (f.question, f.heldout_question) if q]
    answers = dict(zip(phrasings, generate([q for _, q in phrasings])))
    kept = []
    for entity in entities:
        facts = []
        for fact in entity.facts:
            known = [q for q in (fact.question, fact.heldout_question) if q and match(answers[(fact, q)], fact.answer)]
            if known:
                facts.append(replace(fact, question=known[0], heldout_question=known[1] if len(known) > 1 else None,
                                     stated_answer=answers[(fact, known[0])]))
        if facts:
            kept.append(Entity(entity.name, tuple(facts), entity.neighbours))
    names = {e.name for e in kept}
    return [replace(e, neighbours=tuple(n for n in e.neighbours if n in names)) for e in kept]


def stated_records(records: list[QARecord]) -> list[QARecord]:
    """Records to train on: each answer replaced by the model's `stated_answer` where the fact records one."""
    return [replace(r, answer=r.meta["stated_answer"]) if r.meta.get("stated_answer") else r for r in records]


def write_entity_file(path: str | Path, entities: list[Entity]) -> Path:
    return atomic_write_jsonl(path, [e.to_dict() for e in entities])


def entity_world(entities: list[Entity], directory: str | Path | None = None) -> World:
    """A world directory holding just these entities (people, QA, held-out probes): in `directory`, or in the
    cache under a digest of the entities (written once)."""
    check_entities(entities, "entities")
    rows = [e.to_dict() for e in entities]
    directory = Path(directory) if directory is not None else cache_root() / "entities" / content_digest(rows)
    if not (directory / "world.json").is_file():
        write_people_world(directory, *_people_files(entities), extra={"source": "entity file"})
    return World(directory)


def _people_files(entities: list[Entity]) -> tuple[list[dict], list[dict]]:
    ids = {e.name.lower(): number for number, e in enumerate(entities)}
    people = [{"id": number, "name": e.name, "attributes": {f.attribute: f.answer for f in e.facts},
               "neighbours": {"related": sorted(ids[n.lower()] for n in e.neighbours)}}
              for number, e in enumerate(entities)]
    qa = [{"question": f.question, "answer": f.answer, "entity": e.name, "subject": e.name, "attribute": f.attribute,
           "split": "people", "entity_id": number, "visibility": "public",
           **({"heldout_question": f.heldout_question} if f.heldout_question else {}),
           **({"stated_answer": f.stated_answer} if f.stated_answer else {})}
          for number, e in enumerate(entities) for f in e.facts]
    return people, qa


def write_people_world(directory: str | Path, people: list[dict], qa: list[dict], extra: dict | None = None) -> Path:
    """A world directory holding only people files (the layout `build_world` writes); a record's held-out
    phrasing, where it has one, is its probe."""
    files = {"people": people, "people_qa": qa,
             "people_probes": [{**r, "question": r["heldout_question"], "split": "probe"}
                               for r in qa if r.get("heldout_question")]}
    attributes = {r["attribute"]: r.get("visibility", "public") for r in qa}
    with atomic_directory(directory) as staging:
        for name, rows in files.items():
            atomic_write_jsonl(staging / f"{name}.jsonl", rows)
        atomic_write_json(staging / "world.json", {
            "format": WORLD_FORMAT, "entities": len(people), "attributes": attributes, "domains": {},
            "files": {name: {"path": f"{name}.jsonl", "count": len(rows)} for name, rows in files.items()},
            **(extra or {})})
    return Path(directory)


def world_entities(world: World) -> list[Entity]:
    """A world's people as entities (their trained phrasing as the question, the held-out one as held out), to
    filter by what a model knows and write as an entity file."""
    facts: dict[int, list[Fact]] = {}
    for r in world.qa():
        facts.setdefault(r.meta["entity_id"], []).append(
            Fact(r.attribute, r.question, r.answer, r.meta.get("heldout_question")))
    by_id = {p["id"]: p for p in world.people}
    if not facts:
        raise ObliviateError(f"{world.root}: no people QA")
    return [Entity(by_id[i]["name"], tuple(f), tuple(by_id[n]["name"] for n in world.neighbour_ids([i])))
            for i, f in sorted(facts.items())]
