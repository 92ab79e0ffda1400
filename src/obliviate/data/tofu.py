"""TOFU (fictitious authors): forget, retain and general-knowledge splits as QA records.

Data is read from a directory laid out like `../shared/data/tofu` (JSON Lines files named
`<split>.json`), or from the hub dataset `locuslab/TOFU`, whose configs carry the same names.
The local forget files hold ten alternative forget sets numbered by `task_id`; task "1" is
the standard TOFU split. Hub configs have no `task_id` and hold the standard split only.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from obliviate.data.readers import Row, read_located_rows
from obliviate.data.schema import QARecord
from obliviate.errors import DataError, ObliviateError

TOFU_HUB = "locuslab/TOFU"
TOFU_DIR_ENV = "OBLIVIATE_TOFU_DIR"
DEFAULT_TOFU_DIR = Path("..", "shared", "data", "tofu")
STANDARD_TASK = "1"
QA_PER_AUTHOR = 20


@dataclass(frozen=True)
class _Split:
    files: tuple[str, ...]  # file stems; the first found is the base, later ones are merged in
    by_task: bool = False  # rows carry task_id: keep the requested task's rows
    authors: bool = False  # fictitious-author QA, so records get an `entity`


def _forget(size: str) -> dict[str, _Split]:
    return {
        f"forget{size}": _Split((f"forget{size}", f"forget{size}_perturbed"), by_task=True, authors=True),
        f"forget{size}_perturbed": _Split((f"forget{size}_perturbed",), by_task=True, authors=True),
    }


def _probe(name: str) -> dict[str, _Split]:
    # Locally only the `_perturbed` file exists; it holds the plain split's rows too.
    return {name: _Split((name, f"{name}_perturbed")), f"{name}_perturbed": _Split((f"{name}_perturbed",))}


_SPLITS: dict[str, _Split] = {
    **_forget("01"),
    **_forget("05"),
    **_forget("10"),
    "retain90": _Split(("retain90",), authors=True),
    "retain50": _Split(("retain50",), authors=True),
    "retain10": _Split(("retain10",), authors=True),
    "retain_perturbed": _Split(("retain_perturbed",), authors=True),
    # QA about further fictitious authors no TOFU model learns: the non-members of membership inference
    "holdout01": _Split(("holdout01",)),
    "holdout05": _Split(("holdout05",)),
    "holdout10": _Split(("holdout10",)),
    **_probe("real_authors"),
    **_probe("world_facts"),
}
FULL_SPLIT = "full"  # the whole training set: retain90 + forget10 (standard task), 4,000 QA
TOFU_SPLITS: tuple[str, ...] = (*_SPLITS, FULL_SPLIT)


def load_tofu(split: str, root: str | os.PathLike | None = None, task_id: str = STANDARD_TASK) -> list[QARecord]:
    """TOFU records of one split. `root=None`: $OBLIVIATE_TOFU_DIR, else ../shared/data/tofu, else the hub.

    Forget splits keep the rows of `task_id`. A split with a `_perturbed` companion file gains
    its paraphrased_question, paraphrased_answer and perturbed_answer (joined by question text).
    Fictitious-author QA get `entity`, an author id such as "tofu-author-007", and `subject`, the span of the
    question that names the author (`question_subject`), which model edits (UniErase) key on.
    """
    if split not in TOFU_SPLITS:
        raise ObliviateError(f"unknown TOFU split '{split}'; valid splits: {', '.join(TOFU_SPLITS)}")
    source = _resolve_root(root)
    if split == FULL_SPLIT:
        rows = full_set = _full_set(source)
    else:
        rows = _split_rows(source, _SPLITS[split], str(task_id))
        full_set = _full_set(source) if _SPLITS[split].authors else []
    records = [QARecord.from_dict(row.data, row.source, row.record) for row in rows]
    author_of = _author_ids(full_set)
    names = author_names(full_set, author_of)
    for record in records:
        record.split = split
        record.entity = author_of.get((record.question, record.answer))
        if record.entity is not None and record.subject is None:
            record.subject = question_subject(record.question, names.get(record.entity))
    return records


def _resolve_root(root: str | os.PathLike | None) -> Path | None:
    """The TOFU directory to read, or None for the hub."""
    # An explicit setting (argument, then environment) must exist; the shared default may not.
    explicit = root if root is not None else os.environ.get(TOFU_DIR_ENV)
    if explicit:
        if not Path(explicit).is_dir():
            raise ObliviateError(f"{explicit}: TOFU directory not found")
        return Path(explicit)
    return local_tofu_dir()


def local_tofu_dir() -> Path | None:
    """$OBLIVIATE_TOFU_DIR, else ../shared/data/tofu, where that directory exists; else None (only the hub)."""
    for candidate in (os.environ.get(TOFU_DIR_ENV), DEFAULT_TOFU_DIR):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def _read_file(source: Path | None, stem: str) -> list[Row] | None:
    """One file's rows; None when a local directory lacks it."""
    if source is None:
        return read_located_rows(TOFU_HUB, split="train", config=stem)
    path = source / f"{stem}.json"
    return read_located_rows(path) if path.exists() else None


def _split_rows(source: Path | None, spec: _Split, task_id: str) -> list[Row]:
    found = [rows for rows in (_read_file(source, stem) for stem in spec.files) if rows is not None]
    if not found:
        raise DataError(source / f"{spec.files[0]}.json", "file not found")
    if spec.by_task:
        found = [_keep_task(rows, task_id) for rows in found]
    base, *extras = found
    for extra in extras:
        base = _merge_by_question(base, extra)
    return base


def _keep_task(rows: list[Row], task_id: str) -> list[Row]:
    if "task_id" not in rows[0].data:
        if task_id != STANDARD_TASK:
            raise ObliviateError(f"{rows[0].source}: has no task_id, so only task_id '{STANDARD_TASK}' is available")
        return rows
    kept = [row for row in rows if str(row.data.get("task_id")) == task_id]
    if not kept:
        tasks = sorted({str(row.data.get("task_id")) for row in rows}, key=lambda t: (len(t), t))
        message = f"no rows with task_id '{task_id}'; available: {', '.join(tasks)}"
        raise DataError(rows[0].source, message, field="task_id")
    return kept


def _question(row: Row) -> str | None:
    question = row.data.get("question")
    return question if isinstance(question, str) else None


def _merge_by_question(base: list[Row], extra: list[Row]) -> list[Row]:
    """Base rows gain the fields they lack from the extra row with the same question."""
    extra_by_question = {_question(row): row.data for row in extra if _question(row) is not None}
    return [Row({**extra_by_question.get(_question(row), {}), **row.data}, row.source, row.record) for row in base]


def _full_set(source: Path | None) -> list[Row]:
    """retain90 + forget10 of the standard task, without the perturbed fields."""
    forget10 = _Split(("forget10",), by_task=True)
    return _split_rows(source, _SPLITS["retain90"], STANDARD_TASK) + _split_rows(source, forget10, STANDARD_TASK)


def _author_ids(full_set: list[Row]) -> dict[tuple[str, str], str]:
    """(question, answer) → author id, from the full set's order: 20 QA per author, in order.

    Checked on the shared copy: each block of 20 rows of retain90 + forget10 (task 1) is about
    one author (tests/test_data.py checks every block). The ids follow the source's order, so
    the local files and the hub (whose forget10 may be ordered differently) may number authors differently.
    """
    return {
        (row.data.get("question"), row.data.get("answer")): f"tofu-author-{position // QA_PER_AUTHOR:03d}"
        for position, row in enumerate(full_set)
    }


# A capitalised word of a name, or a lower-case particle ("al-", "de", "van"); "(Alex)" counts as a word.
_NAME_WORD = r"(?:\(?[A-Z][\w'’\-.]*\)?|(?:al|el|de|del|der|van|von|da|di|la|le|bin|ibn|du)(?:-[A-Z][\w\-]*)?)"
_NAME = re.compile(rf"[A-Z][\w'’\-.]*(?:\s+{_NAME_WORD})+")
_TITLE = re.compile(r"[\"“'‘]([^\"“”'‘’]{3,})[\"”'’]")
_DESCRIPTION = re.compile(r"\b(?:the|this|that|an?)\s+(?:[\w+-]+\s+)*?(?:author|writer|novelist|poet)\b[^?]*",
                          re.IGNORECASE)


def author_names(full_set: list[Row], author_of: dict[tuple[str, str], str]) -> dict[str, str]:
    """Author id → the author's name as the questions write it: the multi-word capitalised span (possessive
    's dropped) found in the most of that author's questions, if in at least two (one author has no name)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in full_set:
        question = row.data.get("question")
        author = author_of.get((question, row.data.get("answer")))
        if isinstance(question, str) and author is not None:
            counts[author].update({re.sub(r"['’]s$", "", span) for span in _NAME.findall(question)})
    names = {}
    for author, spans in counts.items():
        name, seen = max(spans.items(), key=lambda item: (item[1], len(item[0])), default=("", 0))
        if seen >= 2:
            names[author] = name
    return names


def question_subject(question: str, name: str | None) -> str:
    """The span of `question` an edit keys on: the author's full `name` if the question has it (19 of 20 questions
    for most authors), else the longest word of it the question uses ("Nakamura's book"), else a quoted title,
    else the description of the author ("the author born in Kuwait City, Kuwait on 08/09/1956"), else the
    question itself without its final punctuation (a question that says only "he")."""
    if name and name in question:
        return name
    for word in sorted((w.strip("()") for w in (name or "").split()), key=len, reverse=True):
        if len(word) >= 3 and re.search(rf"\b{re.escape(word)}\b", question):
            return word
    for pattern in (_TITLE, _DESCRIPTION):
        if found := pattern.search(question):
            return found.group(found.lastindex or 0).strip()
    return question.rstrip(" ?.!")
