"""Progress bars for every step that can take more than a second (quiet when not on a terminal)."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], description: str, total: int | None = None, leave: bool = False) -> Iterable[T]:
    disabled = os.environ.get("OBLIVIATE_QUIET") == "1" or not sys.stderr.isatty()
    return tqdm(items, desc=description, total=total, leave=leave, disable=disabled, dynamic_ncols=True)
