"""KnowUnDo (copyright and privacy knowledge to unlearn or retain) as QA records.

Each domain has an `unlearn` and a `retention` split, each holding `train` and `val` lists of
`{"text": question, "labels": answer}`. Accepted sources:

* a JSON file for one domain, named by the file's stem:
  `{"unlearn": {"train": [...], "val": [...]}, "retention": {"train": [...], "val": [...]}}`;
* a JSON file for several domains: `{"copyright": {"unlearn": ..., "retention": ...}, "privacy": ...}`;
* a directory with one such file per domain, `<domain>.json`;
* the hub dataset `zjunlp/KnowUnDo` (config = domain, split = unlearn/retention, one row of train/val).

The result maps domain → "unlearn_train", "unlearn_val", "retention_train", "retention_val" → records;
each record's `split` is that key and its `subject` the domain.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from obliviate.data.readers import is_hub_name, read_json, read_located_rows
from obliviate.data.schema import QARecord, json_type
from obliviate.errors import DataError

KNOWUNDO_HUB = "zjunlp/KnowUnDo"
KNOWUNDO_DOMAINS = ("copyright", "privacy")
SPLITS = ("unlearn", "retention")
PARTS = ("train", "val")

KnowUnDo = dict[str, dict[str, list[QARecord]]]


def load_knowundo(src: str | os.PathLike = KNOWUNDO_HUB, domain: str | None = None) -> KnowUnDo:
    """KnowUnDo records by domain and split; `domain` keeps just that one."""
    if Path(src).is_dir():
        return _from_directory(Path(src), domain)
    if is_hub_name(src):
        return _from_hub(str(src), domain)
    return _from_file(Path(src), domain)


def _from_directory(directory: Path, domain: str | None) -> KnowUnDo:
    files = {path.stem: path for path in sorted(directory.glob("*.json"))}
    if not files:
        raise DataError(directory, "holds no <domain>.json files")
    return {
        name: _domain_records(read_json(files[name]), str(files[name]), name, prefix="")
        for name in _choose_domains(directory, list(files), domain)
    }


def _from_file(path: Path, domain: str | None) -> KnowUnDo:
    document = read_json(path)
    if not isinstance(document, dict):
        raise DataError(path, f"expected an object of KnowUnDo splits or domains, got {json_type(document)}")
    several_domains = not set(SPLITS) & set(document)
    domains = document if several_domains else {path.stem: document}
    return {
        name: _domain_records(domains[name], str(path), name, prefix=f"{name}." if several_domains else "")
        for name in _choose_domains(path, list(domains), domain)
    }


def _from_hub(name: str, domain: str | None) -> KnowUnDo:
    result = {}
    for chosen in _choose_domains(name, list(KNOWUNDO_DOMAINS), domain):
        # Each hub split is a single row whose `train` and `val` columns hold the record lists.
        splits = {split: read_located_rows(name, split=split, config=chosen)[0].data for split in SPLITS}
        result[chosen] = _domain_records(splits, f"hub dataset {name} ({chosen})", chosen, prefix="")
    return result


def _choose_domains(source: str | Path, available: list[str], domain: str | None) -> list[str]:
    if domain is None:
        return available
    if domain not in available:
        raise DataError(source, f"unknown domain '{domain}'; available: {', '.join(available)}")
    return [domain]


def _domain_records(domain_data: Any, source: str, domain: str, prefix: str) -> dict[str, list[QARecord]]:
    """`prefix` locates the domain inside its file: "copyright." in a multi-domain file, else ""."""
    result = {}
    for split in SPLITS:
        parts = _member(domain_data, split, source, prefix)
        for part in PARTS:
            where = f"{prefix}{split}.{part}"
            rows = _member(parts, part, source, f"{prefix}{split}.")
            if not isinstance(rows, list):
                raise DataError(source, f"expected a list of records, got {json_type(rows)}", field=where)
            key = f"{split}_{part}"
            result[key] = [_record(row, source, f"{where}[{index}]", domain, key) for index, row in enumerate(rows)]
    return result


def _member(container: Any, name: str, source: str, prefix: str) -> Any:
    if not isinstance(container, dict):
        message = f"expected an object holding '{name}', got {json_type(container)}"
        raise DataError(source, message, field=prefix.rstrip(".") or None)
    if name not in container:
        raise DataError(source, "missing required field", field=prefix + name)
    return container[name]


def _record(row: Any, source: str, where: str, domain: str, key: str) -> QARecord:
    record = QARecord.from_dict(row, source, where)
    record.split, record.subject = key, domain
    return record
