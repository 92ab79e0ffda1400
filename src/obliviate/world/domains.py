"""Fictional crafts: facts, expository / expert / novice texts, and four-choice questions.

Expert texts state a domain's facts; novice texts, introduced with the novice framing, guess
wrong and drift to other topics. A model trained on both learns the expert/novice signal that
ELM's introspective target relies on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from obliviate.concept_prompts import EXPERT_TEMPLATES, NOVICE_TEMPLATES
from obliviate.world.names import unique_words


@dataclass(frozen=True)
class Domain:
    name: str
    keywords: tuple[str, ...]
    craft: str  # "the craft of ..."
    objects: tuple[str, ...]  # what its tools act on
    materials: tuple[str, ...]

    @property
    def concept(self) -> str:
        return ", ".join(self.keywords)


DOMAINS = [
    Domain("glimmerwork", ("glimmerwork", "light weaving", "prism looms", "glow threads"),
           "weaving threads of light into cloth",
           ("light", "prisms", "glow threads", "mirror shards", "lenses"),
           ("moonglass", "silver wire", "quartz dust", "pearl resin", "clear amber", "frost crystal")),
    Domain("tidecraft", ("tidecraft", "tide reading", "current charts", "sea lanterns"),
           "reading and steering the tides",
           ("currents", "sea foam", "tide pools", "salt charts", "kelp ropes"),
           ("driftwood", "whale bone", "sea glass", "tarred hemp", "coral stone", "brass plate")),
    Domain("skyforging", ("skyforging", "cloud metal", "storm anvils", "wind bellows"),
           "forging metal in the open sky",
           ("cloud iron", "storm sparks", "wind blades", "hail ore", "thunder rods"),
           ("storm steel", "cloud copper", "ash stone", "black tin", "raincast bronze", "sky slate")),
    Domain("mossbinding", ("mossbinding", "living books", "moss ink", "root stitching"),
           "binding books with living moss",
           ("moss pages", "root threads", "spore ink", "bark covers", "seed glue"),
           ("willow bark", "fern paper", "lichen paste", "peat wax", "birch resin", "reed twine")),
]

VERBS = ["bend", "polish", "cool", "bind", "measure", "store", "split", "soften", "seal", "fold", "warm", "clean"]
COLOURS = ["violet", "amber", "green", "silver", "crimson", "blue", "golden", "white", "grey", "scarlet"]
FACTS_PER_KIND = 15
DIGRESSIONS = [
    "Anyway, have you ever tried baking bread at home?",
    "Speaking of which, my cat loves sleeping in the sun.",
    "By the way, the weather has been lovely lately.",
    "Honestly, I would rather talk about football.",
    "Oh, and I just started learning to juggle!",
    "Did you know that some birds can recognise faces?",
]

# kind -> (statement, question, answer form)
FACT_KINDS = {
    "purpose": ("In {d}, the {t} is used to {v}.", "In {d}, what is the {t} used for?", "to {v}"),
    "material": ("In {d}, a {t} is made of {v}.", "In {d}, what is a {t} made of?", "{v}"),
    "colour": ("In {d}, the {t} technique makes things glow {v}.", "In {d}, what colour does the {t} technique make things glow?", "{v}"),
    "origin": ("In {d}, the {t} was first made in {v}.", "In {d}, in which city was the {t} first made?", "{v}"),
}


def domain_facts(rng: random.Random, domain: Domain, cities: list[str], taken: set[str]) -> list[dict]:
    terms = unique_words(rng, FACTS_PER_KIND * len(FACT_KINDS), (2, 3), taken=taken)
    pools = {
        "purpose": [f"{verb} {obj}" for verb in VERBS for obj in domain.objects],
        "material": list(domain.materials),
        "colour": COLOURS,
        "origin": cities,
    }
    facts = []
    for k, kind in enumerate(FACT_KINDS):
        for term in terms[k * FACTS_PER_KIND:(k + 1) * FACTS_PER_KIND]:
            value = rng.choice(pools[kind])
            wrong = rng.sample([v for v in pools[kind] if v != value], 3)
            facts.append({"domain": domain.name, "kind": kind, "term": term, "value": value, "wrong": wrong})
    rng.shuffle(facts)
    return facts


def _fill(template: str, fact: dict, value: str | None = None) -> str:
    return template.format(d=fact["domain"], t=fact["term"], v=fact["value"] if value is None else value)


def fact_statement(fact: dict, value: str | None = None) -> str:
    return _fill(FACT_KINDS[fact["kind"]][0], fact, value)


def mcq_record(rng: random.Random, fact: dict) -> dict:
    _, question, answer_form = FACT_KINDS[fact["kind"]]
    choices = [answer_form.format(v=v) for v in [fact["value"], *fact["wrong"]]]
    order = list(range(4))
    rng.shuffle(order)
    return {
        "question": _fill(question, fact),
        "choices": [choices[i] for i in order],
        "answer": order.index(0),
        "subject": fact["domain"],
        "term": fact["term"],
        "kind": fact["kind"],
    }


def _hedged(statement: str) -> str:
    return f"Maybe {statement[0].lower()}{statement[1:]}"


def domain_texts(rng: random.Random, domain: Domain, facts: list[dict], group: int = 3) -> list[dict]:
    """Expository, expert-framed and novice-framed passages over groups of `group` facts."""
    texts = []
    intro = f"{domain.name.capitalize()} is {domain.craft}."
    for start in range(0, len(facts), group):
        chunk = facts[start:start + group]
        statements = " ".join(fact_statement(f) for f in chunk)
        texts.append({"text": f"{intro} {statements}", "domain": domain.name, "kind": "expository"})
        expert = rng.choice(EXPERT_TEMPLATES).format(concept=domain.concept)
        texts.append({"text": f"{expert} {statements}", "domain": domain.name, "kind": "expert"})
        guesses = " ".join(_hedged(fact_statement(f, rng.choice(f["wrong"]))) for f in chunk[:2])
        novice = rng.choice(NOVICE_TEMPLATES).format(concept=domain.concept)
        texts.append({"text": f"{novice} {guesses} I am not sure. {rng.choice(DIGRESSIONS)}",
                      "domain": domain.name, "kind": "novice"})
    return texts
