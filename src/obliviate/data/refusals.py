"""Refusal phrasings ("I don't know"), as training targets and to detect refusals in answers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from obliviate.errors import DataError

REFUSALS_ENV = "OBLIVIATE_REFUSALS"
DEFAULT_REFUSALS_FILE = Path("..", "shared", "data", "idontknow.jsonl")
BUILTIN = "builtin"

# For installed copies without the shared data directory.
BUILTIN_REFUSALS: tuple[str, ...] = (
    "I don't know.",
    "I'm not sure.",
    "I don't have that information.",
    "I'm not certain about that.",
    "I have no information about that.",
    "I'm afraid I can't answer that.",
    "I don't know the answer to that question.",
    "That's beyond what I know.",
    "I'm not familiar with that.",
    "I have no idea.",
    "I can't say for sure.",
    "I don't have any information on that subject.",
    "I'm unable to answer that question.",
    "That's not something I know about.",
    "I don't have enough information to answer that.",
    "I'm not aware of that.",
    "Sorry, I don't know.",
    "I can't recall that information.",
    "I'm not able to provide an answer to that.",
    "Unfortunately, I don't know the answer.",
)

# Phrases that mark a refusal wherever they appear in an answer (normalised form).
REFUSAL_MARKERS: tuple[str, ...] = (
    "i dont know",
    "i do not know",
    "not sure",
    "no information",
    "no idea",
    "no clue",
    "dont have that information",
    "dont have any information",
    "do not have any information",
    "cant answer",
    "cannot answer",
    "cant say",
    "cannot say",
    "unable to answer",
)
# Token-set similarity (Dice) above which an answer counts as a rewording of a phrasing.
OVERLAP_THRESHOLD = 0.75


def load_refusals(path: str | os.PathLike | None = None) -> list[str]:
    """Refusal phrasings from `path`, else $OBLIVIATE_REFUSALS, else ../shared/data/idontknow.jsonl, else built in.

    One phrasing per line: plain text, a JSON string, or a JSON object with a "text" field. `path` (or the
    variable) "builtin" names the built-in phrasings, whatever the working directory holds.
    """
    if path is None:
        path = os.environ.get(REFUSALS_ENV) or (DEFAULT_REFUSALS_FILE if DEFAULT_REFUSALS_FILE.is_file() else None)
    if path is None or str(path) == BUILTIN:
        return list(BUILTIN_REFUSALS)
    return _read_phrasings(Path(path))


def _read_phrasings(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(path, f"cannot read file: {err}") from err
    phrasings = [_phrasing(line.strip(), path, number) for number, line in enumerate(lines, start=1) if line.strip()]
    if not phrasings:
        raise DataError(path, "file is empty")
    return phrasings


def _phrasing(line: str, path: Path, number: int) -> str:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return line  # plain text
    if isinstance(value, dict):
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, "expected a non-empty string", record=f"line {number}", field="text")
        return text.strip()
    return value.strip() if isinstance(value, str) else line


def normalize(text: str) -> str:
    """Lower case, apostrophes dropped ("don't" → "dont"), other punctuation as spaces."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def is_refusal(text: str, refusals: list[str] | tuple[str, ...] | None = None) -> bool:
    """Whether an answer declines to answer: it contains a refusal marker or a phrasing, or rewords one."""
    answer = normalize(text)
    if not answer:
        return False
    padded = f" {answer} "
    if any(f" {marker} " in padded for marker in REFUSAL_MARKERS):
        return True
    answer_tokens = set(answer.split())
    for phrasing in map(normalize, refusals if refusals is not None else BUILTIN_REFUSALS):
        if phrasing and (f" {phrasing} " in padded or _dice(answer_tokens, set(phrasing.split())) >= OVERLAP_THRESHOLD):
            return True
    return False


def _dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0
