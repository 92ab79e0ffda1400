"""User-facing errors: one clear line, no traceback, exit code 2 on the CLI."""

from __future__ import annotations


class ObliviateError(Exception):
    """An error caused by the user's input or environment, shown as one line."""

    exit_code = 2


class DataError(ObliviateError):
    """A malformed data file: names the file, the record ("line 3", or an index) and the field."""

    def __init__(self, source: str, message: str, record: int | str | None = None, field: str | None = None):
        self.source, self.record, self.field, self.reason = str(source), record, field, message
        where = self.source
        if record is not None:
            where += f", {record}" if isinstance(record, str) else f", record {record}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
