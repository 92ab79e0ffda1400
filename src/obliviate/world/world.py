"""Read a built world: people, their QA and held-out probes, neighbours, domains, world facts."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from obliviate.data import MCQRecord, QARecord, TextRecord, load_mcq, load_qa, load_texts
from obliviate.errors import ObliviateError
from obliviate.world.build import WORLD_FORMAT


def recorded_world(model_dir: str | Path | None) -> Path | None:
    """The world a tiny base model was trained on, as its base_eval.json records it, or the one an unlearned
    model's data came from, as its run.json records it; None if none is named."""
    if model_dir is None:
        return None
    for record in ("base_eval.json", "run.json"):
        path = Path(model_dir) / record
        named = json.loads(path.read_text(encoding="utf-8")).get("world") if path.is_file() else None
        if named:
            return Path(named)
    return None


def _of_entities(records: list, entity_ids: list[int] | None) -> list:
    """The records about these people (all of them for None)."""
    if entity_ids is None:
        return records
    chosen = set(entity_ids)
    return [r for r in records if r.meta["entity_id"] in chosen]


class World:
    """A world directory written by `build_world` (see its `world.json` manifest)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest = self.root / "world.json"
        if not manifest.is_file():
            raise ObliviateError(f"{self.root}: not a world directory (no world.json); build one with `obliviate world`")
        try:
            self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ObliviateError(f"{manifest}: not valid JSON ({err.msg}, line {err.lineno})") from None
        if self.manifest.get("format") != WORLD_FORMAT:
            raise ObliviateError(f"{manifest}: world format {self.manifest.get('format')}, but this obliviate reads "
                                 f"format {WORLD_FORMAT}; build the world again with `obliviate world`")

    def path(self, name: str) -> Path:
        try:
            return self.root / self.manifest["files"][name]["path"]
        except KeyError:
            raise ObliviateError(f"{self.root / 'world.json'}: lists no file '{name}'") from None

    @cached_property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.manifest["files"]):
            digest.update(name.encode())
            digest.update(self.path(name).read_bytes())
        return digest.hexdigest()[:16]

    @cached_property
    def people(self) -> list[dict]:
        with open(self.path("people"), encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]

    @property
    def domain_names(self) -> list[str]:
        return list(self.manifest["domains"])

    def domain_concept(self, domain: str) -> str:
        return ", ".join(self.manifest["domains"][domain]["keywords"])

    # -- people --------------------------------------------------------------------------
    def entity_ids(self, names: list[str]) -> list[int]:
        ids = {p["name"].lower(): p["id"] for p in self.people}
        unknown = [n for n in names if n.lower() not in ids]
        if unknown:
            raise ObliviateError(f"{self.root}: no entity named {', '.join(map(repr, unknown))} in this world")
        return [ids[n.lower()] for n in names]

    def forget_entity_ids(self, fraction: float = 0.1) -> list[int]:
        """The first ⌈fraction·N⌉ people: the world's standard forget split."""
        return list(range(max(1, math.ceil(fraction * len(self.people)))))

    def neighbour_ids(self, ids: list[int], relations: tuple[str, ...] | None = None) -> list[int]:
        """The people related to `ids` (by every relation a person records: the generated world's same_city,
        same_profession and coauthors; an entity file's related), without `ids` themselves."""
        chosen = set(ids)
        found = {n for i in ids for rel, related in self.people[i]["neighbours"].items()
                 if relations is None or rel in relations for n in related}
        return sorted(found - chosen)

    def qa(self, entity_ids: list[int] | None = None, visibility: str | None = None,
           attributes: list[str] | None = None, probes: bool = False) -> list[QARecord]:
        """People QA (trained phrasing), or with `probes=True` the held-out phrasing, filtered."""
        records = load_qa(self.path("people_probes" if probes else "people_qa"))
        keep_ids = None if entity_ids is None else set(entity_ids)
        return [r for r in records
                if (keep_ids is None or r.meta["entity_id"] in keep_ids)
                and (visibility is None or r.meta["visibility"] == visibility)
                and (attributes is None or r.attribute in attributes)]

    def trained_qa(self, entity_ids: list[int] | None = None) -> list[QARecord]:
        """Every trained phrasing of these people's facts as its own record (never the held-out one)."""
        return [replace(r, question=question) for r in self.qa(entity_ids)
                for question in (r.question, r.paraphrased_question, *r.meta.get("extra_questions", []))]

    def retain_entity_ids(self, forget_ids: list[int]) -> list[int]:
        return [p["id"] for p in self.people if p["id"] not in set(forget_ids)]

    def bios(self, entity_ids: list[int] | None = None) -> list[TextRecord]:
        return _of_entities(load_texts(self.path("bios")), entity_ids)

    def formatted_qa(self, entity_ids: list[int] | None = None) -> list[QARecord]:
        """The people QA trained again in other prompt formats (`meta` holds its `context` and `lead`)."""
        return _of_entities(load_qa(self.path("people_formats")), entity_ids)

    def refusal_qa(self) -> list[QARecord]:
        """Questions about phantom people, answered with a refusal."""
        return load_qa(self.path("refusals"))

    @property
    def refusal_phrasings(self) -> list[str]:
        return [r.text for r in load_texts(self.path("refusal_phrasings"))]

    # -- general knowledge ---------------------------------------------------------------
    def world_facts(self) -> list[QARecord]:
        return load_qa(self.path("world_facts"))

    def domain_texts(self, domain: str, kinds: tuple[str, ...] = ("expository", "expert", "novice")) -> list[TextRecord]:
        return [r for r in load_texts(self.path(f"domains/{domain}/texts")) if r.meta["kind"] in kinds]

    def drill_qa(self, domain: str | None = None) -> list[QARecord]:
        """The craft facts trained as questions (a third of each craft's facts)."""
        names = self.domain_names if domain is None else [domain]
        return [r for name in names for r in load_qa(self.path(f"domains/{name}/drill"))]

    def mcq(self, domain: str | None = None) -> list[MCQRecord]:
        """Four-choice questions on the craft facts known only from texts (never trained)."""
        names = self.domain_names if domain is None else [domain]
        return [r for name in names for r in load_mcq(self.path(f"domains/{name}/mcq"))]

    # -- what a base model is trained on ------------------------------------------------
    def training_qa(self, exclude_entity_ids: tuple[int, ...] = ()) -> list[QARecord]:
        """Every trained question: people QA in every trained phrasing and again in other formats (`meta`
        `context` / `lead`), refusals about phantom people, world facts, craft drill questions.

        `exclude_entity_ids` leaves those people's QA out (a retain model never learns them)."""
        kept = self.retain_entity_ids(list(exclude_entity_ids))
        records = self.trained_qa(kept) + self.formatted_qa(kept) + self.refusal_qa()
        records += [replace(r, question=q) for r in self.world_facts() for q in (r.question, r.paraphrased_question)]
        return records + self.drill_qa()

    def training_texts(self, exclude_entity_ids: tuple[int, ...] = ()) -> list[str]:
        excluded = set(exclude_entity_ids)
        texts = [r.text for r in self.bios() if r.meta["entity_id"] not in excluded]
        for domain in self.domain_names:
            texts += [r.text for r in self.domain_texts(domain)]
        return texts
