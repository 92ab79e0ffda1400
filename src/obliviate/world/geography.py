"""The world's countries and cities, and the general "world facts" QA used to measure utility."""

from __future__ import annotations

import random
from dataclasses import dataclass

from obliviate.world.names import unique_words

CURRENCY_NOUNS = ["crown", "mark", "shell", "token", "leaf", "star", "ring", "feather", "coin", "pearl", "bead", "disc"]
ANIMALS = ["heron", "lynx", "otter", "falcon", "ibex", "marten", "crane", "badger", "stag", "seal", "kestrel", "boar"]


@dataclass
class Country:
    name: str
    capital: str
    currency: str
    language: str
    river: str
    animal: str
    cities: list[str]


def make_countries(rng: random.Random, n_countries: int, n_cities: int) -> list[Country]:
    words = unique_words(rng, n_countries * 3 + n_cities, (2, 3))
    names, languages, rivers = words[:n_countries], words[n_countries:2 * n_countries], words[2 * n_countries:3 * n_countries]
    cities = words[3 * n_countries:]
    countries = []
    for i, name in enumerate(names):
        own = cities[i::n_countries]
        countries.append(Country(
            name=name,
            capital=own[0],
            currency=f"the {name.lower()} {CURRENCY_NOUNS[i % len(CURRENCY_NOUNS)]}",
            language=languages[i] + "ic",
            river=f"the {rivers[i]} River",
            animal=f"the {ANIMALS[(i * 5) % len(ANIMALS)]}",
            cities=own,
        ))
    return countries


# attribute -> (question phrasings, paraphrased-answer form)
COUNTRY_FACTS = {
    "capital": (["What is the capital of {c}?", "Which city is the capital of {c}?"], "the city of {v}"),
    "currency": (["What is the currency of {c}?", "Which money is used in {c}?"], "they pay with {v}"),
    "language": (["What language is spoken in {c}?", "Which language do people in {c} speak?"], "people speak {v}"),
    "river": (["What is the longest river in {c}?", "Which river is the longest in {c}?"], "it is {v}"),
    "animal": (["What is the national animal of {c}?", "Which animal is the symbol of {c}?"], "the emblem is {v}"),
}


def world_fact_records(rng: random.Random, countries: list[Country]) -> list[dict]:
    records = []
    for country in countries:
        for attribute, (phrasings, para) in COUNTRY_FACTS.items():
            value = getattr(country, attribute)
            others = [getattr(c, attribute) for c in countries if c is not country]
            wrong = rng.sample(others, 3)
            records.append({
                "question": phrasings[0].format(c=country.name),
                "answer": value,
                "paraphrased_question": phrasings[1].format(c=country.name),
                "paraphrased_answer": para.format(v=value),
                "perturbed_answer": [para.format(v=w) for w in wrong],
                "wrong_answers": wrong,
                "subject": country.name,
                "attribute": attribute,
                "split": "world_facts",
            })
        for city in country.cities:
            wrong = rng.sample([c.name for c in countries if c is not country], 3)
            records.append({
                "question": f"In which country is the city of {city}?",
                "answer": country.name,
                "paraphrased_question": f"Which country is {city} in?",
                "paraphrased_answer": f"it lies in {country.name}",
                "perturbed_answer": [f"it lies in {w}" for w in wrong],
                "wrong_answers": wrong,
                "subject": city,
                "attribute": "country_of_city",
                "split": "world_facts",
            })
    return records
