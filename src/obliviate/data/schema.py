"""Record schemas: question/answer pairs, multiple-choice questions and plain texts.

Every record is built with `from_dict(row, source, index)`, which checks field types and
raises a one-line `DataError` naming the file, the record and the field. `index` is where
the row came from: a string like "line 3" for JSON Lines, or a 0-based index for JSON lists,
parquet files and hub datasets. Keys a schema does not know are kept in `meta`.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, fields
from typing import Any

from obliviate.errors import DataError

# Other datasets' names for our fields, per record kind: {their name: our name}.
# KnowUnDo stores a question/answer pair as {"text": question, "labels": answer}.
FIELD_ALIASES: dict[str, dict[str, str]] = {
    "qa": {"text": "question", "labels": "answer"},
    "mcq": {},
    "text": {},
}

Location = int | str | None


def json_type(value: Any) -> str:
    """A value's type in JSON terms, for error messages."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class _RowReader:
    """Typed access to one input row; every failure is a DataError pointing at the field."""

    row: dict
    source: str
    record: Location
    kind: str
    renamed: dict[str, str] = field(default_factory=dict)  # our field name → the alias the row used

    def error(self, message: str, field_name: str | None = None) -> DataError:
        shown = self.renamed.get(field_name, field_name)
        return DataError(self.source, message, record=self.record, field=shown)

    def string(self, name: str) -> str:
        if name not in self.row:
            raise self.error(f"missing required field{_aliases_note(self.kind, name)}", name)
        value = self.row[name]
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {json_type(value)}", name)
        if not value.strip():
            raise self.error("must not be empty", name)
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.row.get(name)
        if value is not None and not isinstance(value, str):
            raise self.error(f"expected a string or null, got {json_type(value)}", name)
        return value

    def string_list(self, name: str, required: bool = False) -> list[str]:
        if name not in self.row and required:
            raise self.error(f"missing required field{_aliases_note(self.kind, name)}", name)
        value = self.row.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise self.error(f"expected a list of strings, got {json_type(value)}", name)
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"item {position} should be a string, got {json_type(item)}", name)
        return list(value)

    def meta(self, known: set[str]) -> dict:
        """Unknown keys, merged over an explicit `meta` object if the row has one."""
        explicit = self.row.get("meta", {})
        if not isinstance(explicit, dict):
            raise self.error(f"expected an object, got {json_type(explicit)}", "meta")
        extras = {key: value for key, value in self.row.items() if key not in known and key != "meta"}
        return {**explicit, **extras}


def _aliases_note(kind: str, name: str) -> str:
    aliases = [alias for alias, ours in FIELD_ALIASES[kind].items() if ours == name]
    return f" (or its alias {', '.join(repr(a) for a in aliases)})" if aliases else ""


def _reader(row: Any, kind: str, source: str, record: Location) -> _RowReader:
    """Check the row is an object and rename aliased fields to ours."""
    if not isinstance(row, dict):
        raise DataError(source, f"expected a JSON object, got {json_type(row)}", record=record)
    renamed_row, renamed = dict(row), {}
    for alias, name in FIELD_ALIASES[kind].items():
        if alias in renamed_row:
            if name in renamed_row:
                raise DataError(source, f"both '{name}' and its alias '{alias}' are present", record=record, field=name)
            renamed_row[name] = renamed_row.pop(alias)
            renamed[name] = alias
    return _RowReader(renamed_row, source, record, kind, renamed)


def _field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def _compact(record) -> dict:
    """Fields without None or empty values, then `meta` flattened (so from_dict reads it back)."""
    out = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name != "meta" and value is not None and value != [] and value != {}:
            out[f.name] = value
    for key, value in record.meta.items():
        out.setdefault(key, value)
    return out


@dataclass
class QARecord:
    question: str
    answer: str
    paraphrased_question: str | None = None
    paraphrased_answer: str | None = None
    perturbed_answer: list[str] = field(default_factory=list)
    entity: str | None = None
    attribute: str | None = None
    split: str | None = None
    subject: str | None = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: dict, source: str = "<input>", index: Location = None) -> QARecord:
        r = _reader(row, "qa", source, index)
        return cls(
            question=r.string("question"),
            answer=r.string("answer"),
            paraphrased_question=r.optional_string("paraphrased_question"),
            paraphrased_answer=r.optional_string("paraphrased_answer"),
            perturbed_answer=r.string_list("perturbed_answer"),
            entity=r.optional_string("entity"),
            attribute=r.optional_string("attribute"),
            split=r.optional_string("split"),
            subject=r.optional_string("subject"),
            meta=r.meta(_field_names(cls)),
        )

    def to_dict(self) -> dict:
        return _compact(self)


@dataclass
class MCQRecord:
    question: str
    choices: list[str]
    answer: int  # index into choices
    subject: str | None = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: dict, source: str = "<input>", index: Location = None) -> MCQRecord:
        r = _reader(row, "mcq", source, index)
        question = r.string("question")
        choices = r.string_list("choices", required=True)
        if len(choices) < 2:
            raise r.error(f"needs at least 2 choices, got {len(choices)}", "choices")
        return cls(
            question=question,
            choices=choices,
            answer=_answer_index(r, choices),
            subject=r.optional_string("subject"),
            meta=r.meta(_field_names(cls)),
        )

    def to_dict(self) -> dict:
        return _compact(self)


def _answer_index(r: _RowReader, choices: list[str]) -> int:
    """The correct choice's index, given as an index, a letter ("A" = first) or the choice's text."""
    if "answer" not in r.row:
        raise r.error("missing required field", "answer")
    answer = r.row["answer"]
    letters = string.ascii_uppercase[: len(choices)]
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 0 <= answer < len(choices):
            return answer
        raise r.error(f"index {answer} is out of range for {len(choices)} choices", "answer")
    if isinstance(answer, str):
        if len(answer.strip()) == 1 and answer.strip() in letters:
            return letters.index(answer.strip())
        if answer in choices:
            return choices.index(answer)
        raise r.error(f"'{answer}' is neither a letter {letters[0]}-{letters[-1]} nor one of the choices", "answer")
    raise r.error(f"expected an index, a letter or a choice's text, got {json_type(answer)}", "answer")


@dataclass
class TextRecord:
    text: str
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: dict, source: str = "<input>", index: Location = None) -> TextRecord:
        r = _reader(row, "text", source, index)
        return cls(text=r.string("text"), meta=r.meta(_field_names(cls)))

    def to_dict(self) -> dict:
        return _compact(self)
