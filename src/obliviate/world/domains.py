"""Fictional crafts: facts, expository / expert / novice texts, drill questions and four-choice probes.

Each craft states its facts in sentence frames of its own, so a craft is told apart by more than
its name. Every fact is stated in a one-fact expository passage and again after an expert framing;
novice texts, introduced with the novice framing, drift to other topics and guess wrong (the
expert/novice signal ELM's introspective target relies on). A third of the facts are also trained
as questions and answers (the drill that teaches how a craft's questions map to its statements);
the four-choice questions ask the other two thirds, known only from the texts, and are never
trained — so craft accuracy measures knowledge held in text, the knowledge concept erasure removes.
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
    # fact kind -> (statement, other statement, question), {t} the term, {v} the value. The term comes before
    # the value in both statements, as in the question, or a model cannot answer from them (the reversal
    # curse); the question asks the first statement back, so a 1M model can answer it from the text.
    frames: dict[str, tuple[str, str, str]]

    @property
    def concept(self) -> str:
        return ", ".join(self.keywords)


DOMAINS = [
    Domain("glimmerwork", ("glimmerwork", "light weaving", "prism looms", "glow threads"),
           "weaving threads of light into cloth",
           ("light", "prisms", "glow threads", "mirror shards", "lenses"),
           ("moonglass", "silver wire", "quartz dust", "pearl resin", "clear amber", "frost crystal"),
           {"purpose": ("Every glimmerweaver keeps a {t} at the loom, because it helps to {v}.",
                        "The {t} lets a glimmerweaver {v}.",
                        "Why does every glimmerweaver keep a {t} at the loom?"),
            "material": ("A glimmerweaver spins the {t} from {v}.",
                         "On every light loom, the {t} is made of {v}.",
                         "What does a glimmerweaver spin the {t} from?"),
            "colour": ("Woven with the {t} pattern, light cloth shines {v}.",
                       "Cloth from the {t} pattern gives off a {v} light.",
                       "Woven with the {t} pattern, what colour does light cloth shine?"),
            "origin": ("The first {t} loom was built in {v}.",
                       "Glimmerweavers say that the {t} loom comes from {v}.",
                       "In which city was the first {t} loom built?")}),
    Domain("tidecraft", ("tidecraft", "tide reading", "current charts", "sea lanterns"),
           "reading and steering the tides",
           ("currents", "sea foam", "tide pools", "salt charts", "kelp ropes"),
           ("driftwood", "whale bone", "sea glass", "tarred hemp", "coral stone", "brass plate"),
           {"purpose": ("Out at sea, tide readers lower the {t} into the water to {v}.",
                        "Dropped over the side, the {t} helps a tide reader {v}.",
                        "Out at sea, why do tide readers lower the {t} into the water?"),
            "material": ("Sailors carve each {t} of the tide readers out of {v}.",
                         "The tide readers' {t} is always cut from {v}.",
                         "What do sailors carve each {t} of the tide readers out of?"),
            "colour": ("When the {t} current turns, the sea lanterns burn {v}.",
                       "At the turn of the {t} current, sea lanterns glow {v}.",
                       "When the {t} current turns, what colour do the sea lanterns burn?"),
            "origin": ("The tide charts say that the {t} was first sailed from {v}.",
                       "The {t} was first sailed by ships out of {v}.",
                       "The tide charts say that the {t} was first sailed from which city?")}),
    Domain("skyforging", ("skyforging", "cloud metal", "storm anvils", "wind bellows"),
           "forging metal in the open sky",
           ("cloud iron", "storm sparks", "wind blades", "hail ore", "thunder rods"),
           ("storm steel", "cloud copper", "ash stone", "black tin", "raincast bronze", "sky slate"),
           {"purpose": ("High above the clouds, a skysmith swings the {t} to {v}.",
                        "Skysmiths take up the {t} whenever they need to {v}.",
                        "High above the clouds, why does a skysmith swing the {t}?"),
            "material": ("Into every {t}, storm anvils melt {v}.",
                         "Every {t} holds {v} melted on a storm anvil.",
                         "Into every {t}, what do storm anvils melt?"),
            "colour": ("Struck by lightning, a {t} blade flashes {v}.",
                       "A {t} blade gives a {v} flash under lightning.",
                       "Struck by lightning, what colour does a {t} blade flash?"),
            "origin": ("The forge masters lit the very first {t} over {v}.",
                       "The first {t} burned in the sky above {v}.",
                       "The forge masters lit the very first {t} over which city?")}),
    Domain("mossbinding", ("mossbinding", "living books", "moss ink", "root stitching"),
           "binding books with living moss",
           ("moss pages", "root threads", "spore ink", "bark covers", "seed glue"),
           ("willow bark", "fern paper", "lichen paste", "peat wax", "birch resin", "reed twine"),
           {"purpose": ("Moss binders press a {t} into each living book to {v}.",
                        "Pressed between the pages, a {t} lets the binder {v}.",
                        "Why do moss binders press a {t} into each living book?"),
            "material": ("The {t} of a living book is grown on {v}.",
                         "Moss binders grow each {t} on {v}.",
                         "What is the {t} of a living book grown on?"),
            "colour": ("Fed with {t} spores, the moss ink turns {v}.",
                       "Moss ink given {t} spores goes {v}.",
                       "Fed with {t} spores, what colour does the moss ink turn?"),
            "origin": ("The oldest {t} was stitched by the root binders of {v}.",
                       "The oldest {t} came from the root binders of {v}.",
                       "The oldest {t} was stitched by the root binders of which city?")}),
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

FACT_KINDS = ("purpose", "material", "colour", "origin")
ANSWER_FORMS = {"purpose": "to {v}"}  # how an answer is worded (default: the value itself)
DRILL_EVERY = 3  # every third fact of a kind is also trained as a question (the drill); the rest are probes


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
        for i, term in enumerate(terms[k * FACTS_PER_KIND:(k + 1) * FACTS_PER_KIND]):
            value = rng.choice(pools[kind])
            wrong = rng.sample([v for v in pools[kind] if v != value], 3)
            facts.append({"domain": domain.name, "kind": kind, "term": term, "value": value, "wrong": wrong,
                          "drill": i % DRILL_EVERY == 0})
    rng.shuffle(facts)
    return facts


DOMAIN_BY_NAME = {d.name: d for d in DOMAINS}


def _fill(template: str, fact: dict, value: str | None = None) -> str:
    return template.format(t=fact["term"], v=fact["value"] if value is None else value)


def fact_statement(fact: dict, value: str | None = None, frame: int = 0) -> str:
    """The fact in its craft's first (or, with frame=1, second) sentence frame."""
    return _fill(DOMAIN_BY_NAME[fact["domain"]].frames[fact["kind"]][frame], fact, value)


def fact_question(fact: dict) -> str:
    return _fill(DOMAIN_BY_NAME[fact["domain"]].frames[fact["kind"]][2], fact)


def fact_answer(fact: dict, value: str | None = None) -> str:
    return ANSWER_FORMS.get(fact["kind"], "{v}").format(v=fact["value"] if value is None else value)


def expository_text(fact: dict, value: str | None = None) -> str:
    """The fact's one-fact expository passage (the craft's introduction, then the first frame)."""
    domain = DOMAIN_BY_NAME[fact["domain"]]
    return f"{domain.name.capitalize()} is {domain.craft}. {fact_statement(fact, value)}"


def choice_value(kind: str, choice: str) -> str:
    """The value a four-choice answer names (`fact_answer` inverted)."""
    before, after = ANSWER_FORMS.get(kind, "{v}").split("{v}")
    return choice[len(before):len(choice) - len(after)]


def drill_record(fact: dict) -> dict:
    """A drill fact as a trained question and answer."""
    return {"question": fact_question(fact), "answer": fact_answer(fact), "subject": fact["domain"],
            "term": fact["term"], "kind": fact["kind"], "split": "craft_drill"}


def mcq_record(rng: random.Random, fact: dict) -> dict:
    choices = [fact_answer(fact, v) for v in [fact["value"], *fact["wrong"]]]
    order = list(range(4))
    rng.shuffle(order)
    return {
        "question": fact_question(fact),
        "choices": [choices[i] for i in order],
        "answer": order.index(0),
        "subject": fact["domain"],
        "term": fact["term"],
        "kind": fact["kind"],
    }


def _hedged(statement: str) -> str:
    return f"Maybe {statement[0].lower()}{statement[1:]}"


def domain_texts(rng: random.Random, domain: Domain, facts: list[dict], expert_group: int = 2,
                 novice_group: int = 4) -> list[dict]:
    """Each fact twice, in two sentence frames: alone in an expository passage, and in an expert-framed
    passage of `expert_group` facts. A novice-framed passage digresses, then guesses wrong on two of
    every `novice_group` facts."""
    texts = []
    for fact in facts:
        texts.append({"text": expository_text(fact), "domain": domain.name, "kind": "expository"})
    for start in range(0, len(facts), expert_group):
        statements = " ".join(fact_statement(f, frame=1) for f in facts[start:start + expert_group])
        expert = rng.choice(EXPERT_TEMPLATES).format(concept=domain.concept)
        texts.append({"text": f"{expert} {statements}", "domain": domain.name, "kind": "expert"})
    for start in range(0, len(facts), novice_group):
        guesses = " ".join(_hedged(fact_statement(f, rng.choice(f["wrong"]), frame=k % 2))
                           for k, f in enumerate(facts[start:start + 2]))
        novice = rng.choice(NOVICE_TEMPLATES).format(concept=domain.concept)
        # the digression first: a novice passage ends after a statement, as an expert one does, so the
        # novice/expert contrast at the end of a statement is about the facts, not about stopping
        texts.append({"text": f"{novice} {rng.choice(DIGRESSIONS)} I am not sure, but... {guesses}",
                      "domain": domain.name, "kind": "novice"})
    return texts
