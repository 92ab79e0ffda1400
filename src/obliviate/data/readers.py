"""Reading records from JSON, JSON Lines, parquet and text files, or from the Hugging Face hub.

Accepted inputs:

* `.json`: a list of objects; an object holding lists of objects (one per split, e.g.
  `{"train": [...], "test": [...]}`: pick one with `split=`, or the only one); a single object
  (one record); or JSON Lines content, since some datasets (TOFU) ship JSON Lines as `.json`.
* `.jsonl`: one JSON object per line; blank lines are skipped.
* `.parquet`: one record per table row.
* `.txt`: one text record per paragraph; paragraphs are separated by blank lines, and the
  lines of a paragraph are kept together. Read as `{"text": paragraph}`.
* `owner/name`: a Hugging Face hub dataset, only when no such local path exists.
  `config` names the hub configuration; `split` the hub split (optional when it has one).

Every problem is reported as one line naming the file, the record and the field: records
are located by line ("line 3", 1-based) in JSON Lines and text files, and by 0-based index
in JSON lists, parquet tables and hub datasets.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from obliviate.data.schema import MCQRecord, QARecord, TextRecord, json_type
from obliviate.errors import DataError, ObliviateError

SUPPORTED_SUFFIXES = (".json", ".jsonl", ".parquet", ".txt")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")

Located = list[tuple[int | str, Any]]  # (record location, parsed value)


@dataclass(frozen=True)
class Row:
    """One input row and where it came from, for error messages."""

    data: dict
    source: str
    record: int | str  # "line 3" for line-based files, else a 0-based index


def read_located_rows(src: str | os.PathLike, split: str | None = None, config: str | None = None) -> list[Row]:
    """The rows of a file or hub dataset, each with its source and location."""
    if is_hub_name(src):
        rows = _read_hub(str(src), split, config)
    elif config is not None:
        raise ObliviateError(f"{src}: config '{config}' applies only to hub datasets")
    else:
        rows = _read_file(Path(src), split)
    if not rows:
        raise DataError(src, "contains no records")
    return rows


def read_rows(src: str | os.PathLike, split: str | None = None, config: str | None = None) -> list[dict]:
    """The rows (JSON objects) of a file or hub dataset; see the module docstring for formats."""
    return [row.data for row in read_located_rows(src, split, config)]


def load_qa(src: str | os.PathLike, split: str | None = None, config: str | None = None) -> list[QARecord]:
    """Question/answer records; KnowUnDo's {"text", "labels"} rows are read too (see schema.FIELD_ALIASES)."""
    return _records(QARecord, src, split, config)


def load_mcq(src: str | os.PathLike, split: str | None = None, config: str | None = None) -> list[MCQRecord]:
    """Multiple-choice records; `answer` may be an index, a letter or the correct choice's text."""
    return _records(MCQRecord, src, split, config)


def load_texts(src: str | os.PathLike, split: str | None = None, config: str | None = None) -> list[TextRecord]:
    """Text records: rows with a "text" field, or the paragraphs of a .txt file."""
    return _records(TextRecord, src, split, config)


def _records(record_type, src: str | os.PathLike, split: str | None, config: str | None) -> list:
    return [record_type.from_dict(r.data, r.source, r.record) for r in read_located_rows(src, split, config)]


def read_json(path: str | os.PathLike) -> Any:
    """One whole JSON document (for nested layouts such as KnowUnDo's), with one-line errors."""
    path = Path(path)
    _check_file(path)
    return _parse_json_document(path, _read_text(path))


def is_hub_name(src: str | os.PathLike) -> bool:
    """True for `owner/name` when no such local path exists and it has no data-file suffix."""
    name = str(src)
    return (
        not Path(name).exists()
        and bool(_HUB_NAME.match(name))
        and Path(name).suffix.lower() not in SUPPORTED_SUFFIXES
    )


# ---- local files ---------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(path, "file not found")
    if path.is_dir():
        raise DataError(path, "is a directory, expected a data file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DataError(path, f"unsupported file type '{path.suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def _read_file(path: Path, split: str | None) -> list[Row]:
    _check_file(path)
    rows = []
    for record, value in _FILE_PARSERS[path.suffix.lower()](path, split):
        if not isinstance(value, dict):
            raise DataError(path, f"expected a JSON object, got {json_type(value)}", record=record)
        rows.append(Row(value, str(path), record))
    return rows


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text (byte {err.start})") from err
    except OSError as err:
        raise DataError(path, f"cannot read file: {err.strerror}") from err
    if not text.strip():
        raise DataError(path, "file is empty")
    return text


def _no_splits(path: Path, split: str | None) -> None:
    if split is not None:
        raise DataError(path, f"unknown split '{split}': this file has no splits")


def _parse_json_file(path: Path, split: str | None) -> Located:
    text = _read_text(path)
    if _looks_like_json_lines(text):
        return _parse_json_lines_text(path, text, split)
    return _rows_in_document(path, _parse_json_document(path, text), split)


def _parse_json_lines(path: Path, split: str | None) -> Located:
    return _parse_json_lines_text(path, _read_text(path), split)


def _parse_json_lines_text(path: Path, text: str, split: str | None) -> Located:
    _no_splits(path, split)
    located = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                located.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", record=f"line {number}") from err
    return located


def _parse_json_document(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", record=f"line {err.lineno}") from err


def _looks_like_json_lines(text: str) -> bool:
    """True when the first line is a complete JSON object and more content follows it."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except json.JSONDecodeError:
        return False


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _rows_in_document(path: Path, document: Any, split: str | None) -> Located:
    if isinstance(document, list):
        _no_splits(path, split)
        return list(enumerate(document))
    if not isinstance(document, dict):
        raise DataError(path, f"expected a list of records or an object holding one, got {json_type(document)}")
    splits = {key: value for key, value in document.items() if _is_record_list(value)}
    if not splits:  # a lone object is one record
        _no_splits(path, split)
        return [(0, document)]
    return list(enumerate(splits[_choose_split(path, splits, split)]))


def _choose_split(source: str | Path, available: dict | list, split: str | None) -> str:
    names = list(available)
    if split is None:
        if len(names) == 1:
            return names[0]
        raise DataError(source, f"holds several splits ({', '.join(names)}); choose one with split=")
    if split not in names:
        raise DataError(source, f"unknown split '{split}'; available: {', '.join(names)}")
    return split


def _parse_parquet(path: Path, split: str | None) -> Located:
    _no_splits(path, split)
    import pyarrow
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(path)
    except (pyarrow.ArrowException, OSError) as err:
        raise DataError(path, f"unreadable parquet file: {_first_line(err)}") from err
    return list(enumerate(table.to_pylist()))


def _parse_paragraphs(path: Path, split: str | None) -> Located:
    _no_splits(path, split)
    located, paragraph, start = [], [], 0
    for number, line in enumerate(_read_text(path).splitlines() + [""], start=1):
        if line.strip():
            start = start or number
            paragraph.append(line.rstrip())
        elif paragraph:
            located.append((f"line {start}", {"text": "\n".join(paragraph).strip()}))
            paragraph, start = [], 0
    return located


_FILE_PARSERS: dict[str, Callable[[Path, str | None], Located]] = {
    ".json": _parse_json_file,
    ".jsonl": _parse_json_lines,
    ".parquet": _parse_parquet,
    ".txt": _parse_paragraphs,
}


# ---- Hugging Face hub ----------------------------------------------------------------------


def _read_hub(name: str, split: str | None, config: str | None) -> list[Row]:
    label = f"hub dataset {name}" + (f" ({config})" if config else "")
    try:
        import datasets

        loaded = datasets.load_dataset(name, config, split=split)
    # `datasets` raises many unrelated types (connection, missing dataset or config, bad split).
    except Exception as err:
        raise ObliviateError(
            f"could not load {label} from the Hugging Face hub: {_first_line(err)} (the machine may be offline)"
        ) from err
    if split is None:
        split = _choose_split(label, loaded, None)
        loaded = loaded[split]
    source = f"{label}, split {split}"
    return [Row(dict(row), source, index) for index, row in enumerate(loaded)]


# ---- helpers -------------------------------------------------------------------------------


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
