"""Answer matching that lets a verbose correct answer pass: "The capital of France is Paris." matches "Paris".

`answer_contained(generated, reference)` is true when the normalised reference appears in the
normalised generation as a whole-word span. Normalisation (SQuAD's, plus accent folding):

* Unicode NFKD, combining marks dropped ("Márquez" → "Marquez"), then case folding;
* punctuation (ASCII `string.punctuation` and every Unicode punctuation character) removed;
* the articles "a", "an", "the" removed as words;
* whitespace collapsed to single spaces.

Punctuation is tried both ways, removed (SQuAD: "U.S." → "us", "21,000" → "21000") and replaced
by a space ("R.R." and "R. R." → "r r"); the reference matches when it is a span under either,
the reference and the generation always normalised the same way. Whole words only: "Paris" does
not match "Parisian", nor "1989" "19890". It is one-way: a short generation does not contain a long
reference. An empty reference, or one that normalises to nothing ("The", "..."), matches nothing.
"""

from __future__ import annotations

import re
import string
import unicodedata

ARTICLES = re.compile(r"\b(?:a|an|the)\b")
ASCII_PUNCTUATION = frozenset(string.punctuation)


def _is_punctuation(char: str) -> bool:
    return char in ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def normalise_answer_text(text: str, punctuation: str = "") -> str:
    """`text` normalised as above, each punctuation character replaced by `punctuation` ("" or " ")."""
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    stripped = "".join(punctuation if _is_punctuation(char) else char for char in folded)
    return " ".join(ARTICLES.sub(" ", stripped).split())


def answer_contained(generated: str, reference: str) -> bool:
    """Whether the normalised `reference` is a whole-word span of the normalised `generated` text."""
    for punctuation in ("", " "):
        wanted = normalise_answer_text(reference, punctuation)
        if wanted and f" {wanted} " in f" {normalise_answer_text(generated, punctuation)} ":
            return True
    return False
