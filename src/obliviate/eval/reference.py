"""A reference eval JSON (e.g. the retain model's, or the model before unlearning) that metrics compare against."""

from __future__ import annotations

import json
import os
from pathlib import Path

from obliviate.errors import ObliviateError


class Reference:
    def __init__(self, document: dict, source: str):
        if not isinstance(document, dict) or not isinstance(document.get("metrics"), dict):
            raise ObliviateError(f"{source}: not an obliviate eval JSON (no 'metrics' object)")
        self.document, self.source = document, source

    @classmethod
    def load(cls, reference: str | os.PathLike | dict) -> Reference:
        if isinstance(reference, dict):
            return cls(reference, "<reference eval>")
        path = Path(reference)
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")), str(path))
        except FileNotFoundError:
            raise ObliviateError(f"{path}: reference eval file not found") from None
        except json.JSONDecodeError as err:
            raise ObliviateError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None

    def metric(self, suite: str, name: str) -> float:
        value = self.document["metrics"].get(suite, {}).get(name)
        if value is None:
            raise ObliviateError(f"{self.source}: has no metric '{name}' for suite '{suite}'; "
                                 f"evaluate the reference model with the same suites")
        return value

    def samples(self, suite: str, set_name: str, questions: list[str]) -> list[dict]:
        """The reference's per-sample rows of one set, which must hold the same questions as ours."""
        rows = [row for row in self.document.get("per_sample", [])
                if row.get("suite") == suite and row.get("set") == set_name]
        if sorted(row.get("question", "") for row in rows) != sorted(questions):
            raise ObliviateError(f"{self.source}: its '{suite}' {set_name} set has {len(rows)} samples that are not "
                                 f"the {len(questions)} evaluated here; evaluate the reference with the same data "
                                 "and --limit")
        return rows
