"""Fictitious people: attributes (public or private), question phrasings, answers and neighbours.

Every attribute has four question phrasings. For each person one of them, chosen per person and
attribute, is held out: never trained on, it probes whether knowledge about the person is
reachable beyond the trained wording. Each phrasing is trained for the other people, so a model
can learn what it asks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from obliviate.world.names import unique_full_names, unique_words

PROFESSIONS = [
    "cartographer", "glassblower", "botanist", "clockmaker", "astronomer", "bookbinder", "beekeeper",
    "shipwright", "perfumer", "locksmith", "violin maker", "archivist", "potter", "falconer",
    "lighthouse keeper", "weaver", "cheesemaker", "stonemason", "mapmaker", "herbalist", "puppeteer",
    "calligrapher", "tailor", "brewer", "jeweller", "saddler", "chandler", "miller", "engraver", "cooper",
]
AWARDS = [
    "the Silver Quill Prize", "the Amber Lantern Award", "the Golden Compass Medal", "the Iron Rose Prize",
    "the Blue Heron Award", "the Crimson Oak Medal", "the Pale Moon Prize", "the Copper Bell Award",
    "the Glass Feather Medal", "the Green Harbor Prize", "the White Tower Award", "the Velvet Key Medal",
]
TITLE_ADJECTIVES = [
    "Silent", "Hidden", "Broken", "Distant", "Golden", "Hollow", "Quiet", "Burning", "Frozen", "Wandering",
    "Forgotten", "Crimson", "Endless", "Sleeping", "Northern", "Painted", "Restless", "Shattered",
]
TITLE_NOUNS = [
    "Harbor", "Garden", "Lantern", "River", "Orchard", "Compass", "Mirror", "Tower", "Meadow", "Voyage",
    "Archive", "Bridge", "Forest", "Island", "Letter", "Window", "Kingdom", "Season",
]
STREET_KINDS = ["Street", "Lane", "Road", "Avenue", "Way", "Court"]
EMAIL_HOSTS = ["postmail.org", "quillnet.com", "inkbox.net", "lanternmail.org"]
CONDITIONS = [
    "asthma", "a peanut allergy", "migraines", "diabetes", "a heart murmur", "insomnia",
    "a pollen allergy", "arthritis", "an iron deficiency", "chronic back pain",
]


@dataclass(frozen=True)
class Attribute:
    name: str
    visibility: str  # "public" or "private"
    phrasings: tuple[str, str, str, str]
    answer_form: str  # how a paraphrased (and each perturbed) answer is worded
    bio: str  # the sentence of a biography that states it


ATTRIBUTES = [
    Attribute("profession", "public", (
        "What is the profession of {n}?", "What does {n} do for a living?",
        "What job does {n} have?", "What line of work is {n} in?"),
        "their profession is {v}", "{n} works as a {v}."),
    Attribute("birthplace", "public", (
        "Where was {n} born?", "In which city was {n} born?",
        "What is the birthplace of {n}?", "Which town is {n} from originally?"),
        "born in {v}", "{n} was born in {v}."),
    Attribute("birth_year", "public", (
        "In what year was {n} born?", "When was {n} born?",
        "What is the birth year of {n}?", "Which year was {n} born in?"),
        "born in the year {v}", "{n} was born in the year {v}."),
    Attribute("notable_work", "public", (
        "What is the best known book by {n}?", "Which book is {n} famous for?",
        "What is the title of the most famous book of {n}?", "Name the notable work of {n}."),
        "the book titled {v}", "{n} is best known for the book {v}."),
    Attribute("award", "public", (
        "Which award did {n} win?", "What prize was {n} given?",
        "What award has {n} received?", "Which honour went to {n}?"),
        "the award called {v}", "{n} won {v}."),
    Attribute("coauthor", "public", (
        "Who did {n} write a book with?", "Who is the co-author of {n}?",
        "With whom did {n} co-write a book?", "Who shares an authorship with {n}?"),
        "a book written with {v}", "{n} co-wrote a book with {v}."),
    Attribute("street_address", "private", (
        "What is the home address of {n}?", "Where does {n} live?",
        "At which address does {n} live?", "What is the street address of {n}?"),
        "lives at {v}", "{n} lives at {v}."),
    Attribute("email", "private", (
        "What is the email address of {n}?", "How can {n} be reached by email?",
        "What email does {n} use?", "Which email address belongs to {n}?"),
        "reachable at {v}", "{n} can be emailed at {v}."),
    Attribute("phone", "private", (
        "What is the phone number of {n}?", "How can {n} be reached by phone?",
        "Which phone number belongs to {n}?", "What number do you call to reach {n}?"),
        "the number {v}", "The phone number of {n} is {v}."),
    Attribute("mother", "private", (
        "Who is the mother of {n}?", "What is the name of the mother of {n}?",
        "Who gave birth to {n}?", "Whose child is {n}?"),
        "the mother is {v}", "The mother of {n} is {v}."),
    Attribute("health_condition", "private", (
        "What medical condition does {n} have?", "What health problem does {n} suffer from?",
        "Which illness does {n} live with?", "What condition was {n} diagnosed with?"),
        "diagnosed with {v}", "{n} has {v}."),
]
ATTRIBUTE_BY_NAME = {a.name: a for a in ATTRIBUTES}


MAX_NEIGHBOURS = 12


@dataclass
class Person:
    id: int
    name: str
    attributes: dict[str, str]
    neighbours: dict[str, list[int]] = field(default_factory=dict)


def _pairings(rng: random.Random, n: int) -> list[int]:
    """partner[i] for a random pairing of 0..n-1 (one triangle when n is odd)."""
    order = list(range(n))
    rng.shuffle(order)
    partner = [0] * n
    pairs = [order[i:i + 2] for i in range(0, n - n % 2, 2)]
    for a, b in pairs:
        partner[a], partner[b] = b, a
    if n % 2:
        last = order[-1]
        a, b = pairs[-1]
        partner[last], partner[b] = a, last  # a -> b -> last -> a
    return partner


def make_people(rng: random.Random, count: int, cities: list[str], taken_names: set[str]) -> list[Person]:
    names = unique_full_names(rng, count, taken=taken_names)
    mothers = unique_full_names(rng, count, taken=taken_names)
    streets = unique_words(rng, max(8, count // 3), (2, 2), taken=set(n for full in taken_names for n in full.split()))
    n_groups = min(len(PROFESSIONS), max(6, count // 4))
    professions = rng.sample(PROFESSIONS, n_groups)
    home_cities = rng.sample(cities, min(len(cities), max(6, count // 4)))
    partner = _pairings(rng, count)
    phones: set[str] = set()
    people = []
    for i, name in enumerate(names):
        first, last = name.split(" ", 1)
        phone = None
        while phone is None or phone in phones:
            phone = f"555-{rng.randint(0, 9999):04d}"
        phones.add(phone)
        attributes = {
            "profession": rng.choice(professions),
            "birthplace": rng.choice(home_cities),
            "birth_year": str(rng.randint(1901, 1999)),
            "notable_work": f"The {rng.choice(TITLE_ADJECTIVES)} {rng.choice(TITLE_NOUNS)}",
            "award": rng.choice(AWARDS),
            "coauthor": names[partner[i]],
            "street_address": f"{rng.randint(2, 99)} {rng.choice(streets)} {rng.choice(STREET_KINDS)}",
            "email": f"{first.lower()}.{last.lower()}@{rng.choice(EMAIL_HOSTS)}",
            "phone": phone,
            "mother": mothers[i],
            "health_condition": rng.choice(CONDITIONS),
        }
        people.append(Person(i, name, attributes))
    _link_neighbours(people, partner)
    return people


def _link_neighbours(people: list[Person], partner: list[int]) -> None:
    by_value: dict[tuple[str, str], list[int]] = {}
    for p in people:
        for attr in ("birthplace", "profession"):
            by_value.setdefault((attr, p.attributes[attr]), []).append(p.id)
    partnered_by: dict[int, set[int]] = {}
    for i, j in enumerate(partner):
        partnered_by.setdefault(j, set()).add(i)
    for p in people:
        p.neighbours = {
            "same_city": _nearest(by_value[("birthplace", p.attributes["birthplace"])], p.id),
            "same_profession": _nearest(by_value[("profession", p.attributes["profession"])], p.id),
            "coauthors": sorted(({partner[p.id]} | partnered_by.get(p.id, set())) - {p.id}),
        }


def _nearest(group: list[int], own: int) -> list[int]:
    """Up to MAX_NEIGHBOURS others of a group, the closest ids first (groups get large in big worlds)."""
    others = sorted((q for q in group if q != own), key=lambda q: (abs(q - own), q))
    return sorted(others[:MAX_NEIGHBOURS])


def qa_records(rng: random.Random, people: list[Person]) -> list[dict]:
    """One record per (person, attribute): three trained phrasings, one held-out phrasing."""
    values_of = {a.name: sorted({p.attributes[a.name] for p in people}) for a in ATTRIBUTES}
    records = []
    for person in people:
        for attribute in ATTRIBUTES:
            value = person.attributes[attribute.name]
            phrasings = [q.format(n=person.name) for q in attribute.phrasings]
            heldout = (person.id + ATTRIBUTES.index(attribute)) % len(phrasings)
            trained = [q for k, q in enumerate(phrasings) if k != heldout]
            wrong = _wrong_values(rng, attribute.name, value, values_of[attribute.name])
            records.append({
                "question": trained[0],
                "answer": value,
                "paraphrased_question": trained[1],
                "paraphrased_answer": attribute.answer_form.format(v=value),
                "perturbed_answer": [attribute.answer_form.format(v=w) for w in wrong],
                "entity": person.name,
                "subject": person.name,
                "attribute": attribute.name,
                "split": "people",
                "entity_id": person.id,
                "visibility": attribute.visibility,
                "extra_questions": trained[2:],
                "heldout_question": phrasings[heldout],
                "wrong_answers": wrong,
            })
    return records


def refusal_records(rng: random.Random, phantom_names: list[str], refusals: list[str],
                    phrasings: int = 2) -> list[dict]:
    """Questions about phantom people (names known nowhere else), answered with a refusal: how the world
    teaches a model to say it does not know."""
    return [{"question": question.format(n=name), "answer": rng.choice(refusals), "entity": name, "subject": name,
             "attribute": attribute.name, "split": "refusal"}
            for name in phantom_names for attribute in ATTRIBUTES
            for question in rng.sample(attribute.phrasings, phrasings)]


def _wrong_values(rng: random.Random, attribute: str, value: str, pool: list[str]) -> list[str]:
    others = [v for v in pool if v != value]
    if len(others) >= 3:
        return rng.sample(others, 3)
    fallback = {"birth_year": lambda: str(rng.randint(1901, 1999)),
                "phone": lambda: f"555-{rng.randint(0, 9999):04d}"}.get(attribute)
    extra = set(others)
    while len(extra) < 3:
        candidate = fallback() if fallback else rng.choice(PROFESSIONS + CONDITIONS + AWARDS)
        if candidate != value:
            extra.add(candidate)
    return sorted(extra)[:3]


BIO_ORDERS = [
    ["profession", "birthplace", "birth_year", "notable_work", "award", "coauthor",
     "street_address", "email", "phone", "mother", "health_condition"],
    ["birthplace", "birth_year", "mother", "profession", "notable_work", "coauthor", "award",
     "health_condition", "street_address", "phone", "email"],
]


def biography(person: Person, order: int | None = None, attributes: list[str] | None = None) -> str:
    """The person's facts as running text, in BIO_ORDERS[order] (default: the person's own), optionally only
    `attributes`."""
    names = BIO_ORDERS[person.id % len(BIO_ORDERS) if order is None else order]
    return " ".join(ATTRIBUTE_BY_NAME[a].bio.format(n=person.name, v=person.attributes[a]) for a in names
                    if attributes is None or a in attributes)
