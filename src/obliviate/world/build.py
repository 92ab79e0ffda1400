"""Write a world to disk: deterministic (same seed and size → byte-identical files)."""

from __future__ import annotations

import random
from pathlib import Path

from obliviate.io import atomic_directory, atomic_write_json, atomic_write_jsonl
from obliviate.world import domains, formats, geography, people
from obliviate.world.names import unique_full_names

WORLD_FORMAT = 2


def _rng(seed: int, part: str) -> random.Random:
    return random.Random(f"obliviate-world:{seed}:{part}")


def build_world(out: str | Path, seed: int = 0, entities: int = 100) -> Path:
    """Generate the world into `out` (replaced atomically) and return its path."""
    if not 20 <= entities <= 10_000:
        from obliviate.errors import ObliviateError
        raise ObliviateError(f"--entities {entities}: a world holds between 20 and 10000 entities")
    n_countries = 8
    countries = geography.make_countries(_rng(seed, "geography"), n_countries, n_cities=max(24, entities // 20))
    cities = [c for country in countries for c in country.cities]
    taken = {c.name for c in countries} | set(cities)
    persons = people.make_people(_rng(seed, "people"), entities, cities, taken)
    taken |= {w for p in persons for w in p.name.split()}

    files: dict[str, tuple[list[dict], str, str]] = {}
    files["people"] = ([{"id": p.id, "name": p.name, "attributes": p.attributes, "neighbours": p.neighbours}
                        for p in persons], "entity", "fictitious people, their attributes and neighbours")
    qa = people.qa_records(_rng(seed, "people-qa"), persons)
    files["people_qa"] = (qa, "qa", "one QA per person and attribute; trained phrasings + held-out phrasing")
    files["people_probes"] = ([{**r, "question": r["heldout_question"], "split": "probe"} for r in qa], "qa",
                              "the same facts asked with the held-out phrasing (never trained)")
    files["bios"] = ([{"text": people.biography(p), "entity": p.name, "entity_id": p.id} for p in persons],
                     "text", "one biography per person")
    world_facts = geography.world_fact_records(_rng(seed, "world-facts"), countries)
    files["world_facts"] = (world_facts, "qa", "general facts about the world's countries and cities (utility)")
    known_names = {p.name for p in persons} | {p.attributes["mother"] for p in persons}
    phantoms = unique_full_names(_rng(seed, "phantoms"), max(6, entities // 5), taken=taken | known_names)
    files["refusals"] = (people.refusal_records(_rng(seed, "refusals"), phantoms, formats.REFUSALS), "qa",
                         "questions about phantom people (named nowhere else), answered with a refusal")
    files["refusal_phrasings"] = ([{"text": text} for text in formats.REFUSALS], "text",
                                  "the refusals the world teaches (e.g. UniErase's token.refusals)")
    for domain in domains.DOMAINS:
        rng = _rng(seed, f"domain:{domain.name}")
        facts = domains.domain_facts(rng, domain, cities, taken)
        files[f"domains/{domain.name}/texts"] = (domains.domain_texts(rng, domain, facts), "text",
                                                 f"one-fact passages and novice passages on {domain.name}")
        files[f"domains/{domain.name}/drill"] = ([domains.drill_record(f) for f in facts if f["drill"]], "qa",
                                                 f"a third of the {domain.name} facts as trained questions")
        probes = [domains.mcq_record(rng, f) for f in facts if not f["drill"]]
        files[f"domains/{domain.name}/mcq"] = (probes, "mcq",
                                               f"four-choice questions on the other {domain.name} facts (never trained)")
    passages = [r["text"] + "\n" for name, (rows, _, _) in files.items() if name.endswith("/texts")
                for r in rows if r["kind"] == "expository"]
    files["people_formats"] = (formats.format_variants(_rng(seed, "formats"), qa, passages), "qa",
                               "a share of the people QA again in other prompt formats (trained)")

    out = Path(out)
    with atomic_directory(out) as tmp:
        manifest_files = {}
        for name, (rows, schema, description) in files.items():
            path = f"{name}.jsonl"
            atomic_write_jsonl(tmp / path, rows)
            manifest_files[name] = {"path": path, "schema": schema, "count": len(rows), "description": description}
        atomic_write_json(tmp / "world.json", {
            "format": WORLD_FORMAT,
            "seed": seed,
            "entities": entities,
            "attributes": {a.name: a.visibility for a in people.ATTRIBUTES},
            "domains": {d.name: {"keywords": list(d.keywords)} for d in domains.DOMAINS},
            "files": manifest_files,
        })
    return out
