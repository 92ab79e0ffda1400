"""Pronounceable fictitious names built from syllables, unique within a world."""

from __future__ import annotations

import random

ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kl", "st", "th", "sh", "tr", "gr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "ya"]
CODAS = ["", "", "n", "r", "l", "s", "th", "m", "k", "nd", "rn"]


def syllable_word(rng: random.Random, syllables: int) -> str:
    word = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + rng.choice(CODAS)
    return word.capitalize()


def unique_words(rng: random.Random, count: int, syllables: tuple[int, int] = (2, 3),
                 taken: set[str] | None = None) -> list[str]:
    """`count` distinct words (none in `taken`), in the order drawn."""
    taken = set() if taken is None else taken
    words: list[str] = []
    while len(words) < count:
        word = syllable_word(rng, rng.randint(*syllables))
        if word not in taken and 4 <= len(word) <= 12:
            taken.add(word)
            words.append(word)
    return words


def unique_full_names(rng: random.Random, count: int, taken: set[str] | None = None) -> list[str]:
    """Distinct "First Last" names: first names are reused across people, last names never are, so a
    person's last name alone tells them apart (the token a model edit keys on)."""
    taken = set() if taken is None else taken
    taken_words = {word for name in taken for word in name.split()}
    firsts = unique_words(rng, max(12, int(count ** 0.5 * 2)), (2, 2), taken=set(taken_words))
    lasts = unique_words(rng, count, (2, 3), taken=taken_words | set(firsts))
    names = [f"{rng.choice(firsts)} {last}" for last in lasts]
    taken.update(names)
    return names
