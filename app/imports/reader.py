"""Streaming a PAS CSV extract: header checks, decoding line by line, row numbering.

The file is read one line at a time (never wholly into memory). Problems that make the
whole file unreadable (wrong delimiter, missing columns, bad encoding) raise
`InvalidInputError` with a message naming the problem; problems with one row (wrong number
of fields, a truncated last line) are handed to the caller as row problems.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.errors import InvalidInputError

_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


@dataclass(frozen=True, slots=True)
class RawRow:
    """One record as read: its row number (the header is row 1), values and any problem."""

    number: int
    values: list[str]
    problem: str | None
    # The file ends on this row without a line ending: a hint that it may have been cut off.
    unterminated: bool = False


class _Lines:
    """Decoded lines of a binary file, remembering bytes read and an unterminated last line."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self._handle = handle
        self._name = name
        self.bytes_read = 0
        self.line_number = 0
        self.unterminated = False

    def __iter__(self) -> Iterator[str]:
        for read in self._handle:
            self.line_number += 1
            self.bytes_read += len(read)
            raw = read.removeprefix(b"\xef\xbb\xbf") if self.line_number == 1 else read
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidInputError(
                    f"{self._name} is not UTF-8 text: line {self.line_number} has a byte "
                    f"(0x{raw[error.start]:02x}) that is not valid UTF-8; save the extract "
                    "as UTF-8 and import it again"
                ) from None
            self.unterminated = not line.endswith("\n")
            yield line


class CsvExtract:
    """Iterate the records of a PAS extract after checking its header."""

    def __init__(self, path: Path, required: Sequence[str]) -> None:
        self.path = path
        self.required = tuple(required)
        self.size = path.stat().st_size
        self.header: list[str] = []
        self._lines: _Lines | None = None

    @property
    def bytes_read(self) -> int:
        return 0 if self._lines is None else self._lines.bytes_read

    def rows(self, handle: BinaryIO) -> Iterator[RawRow]:
        lines = self._lines = _Lines(handle, self.path.name)
        reader = csv.reader(iter(lines), strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise InvalidInputError(f"{self.path.name} is empty: expected a header row") from None
        except csv.Error as error:
            raise InvalidInputError(
                f"{self.path.name}: the header row is malformed: {error}"
            ) from None
        self.header = [name.strip().lower() for name in header]
        self._check_header()
        width = len(self.header)
        while True:
            start_line = lines.line_number + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                # Only an unclosed quote at the end of the file reaches here in strict mode
                # without a following line; report it as a truncated last row.
                message = (
                    "the last line is truncated (a quoted field is never closed); the file "
                    "may have been cut off"
                    if lines.unterminated
                    else f"the row is malformed CSV ({error})"
                )
                yield RawRow(start_line, [], message)
                if lines.unterminated:
                    return
                continue
            if not values or all(not value.strip() for value in values):
                continue  # blank lines carry nothing
            problem = None
            if len(values) != width:
                if lines.unterminated and len(values) < width:
                    problem = (
                        f"the last line is truncated: it has {len(values)} of {width} "
                        "columns and no line ending; the file may have been cut off"
                    )
                else:
                    problem = f"the row has {len(values)} fields but the header has {width}"
            yield RawRow(start_line, values, problem, lines.unterminated)

    def _check_header(self) -> None:
        missing = [name for name in self.required if name not in self.header]
        if not missing:
            duplicated = sorted({name for name in self.header if self.header.count(name) > 1})
            if duplicated:
                raise InvalidInputError(
                    f"{self.path.name}: the header repeats the column(s) {', '.join(duplicated)}"
                )
            return
        joined = ",".join(self.header)
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in joined:
                raise InvalidInputError(
                    f"{self.path.name} looks separated by {name}, not commas: PAS extracts must "
                    "be comma-separated CSV (the header row was read as "
                    f"{len(self.header)} column(s))"
                )
        raise InvalidInputError(
            f"{self.path.name} is missing required column(s): {', '.join(missing)}",
            details=[
                {"row": 1, "column": name, "message": "required column missing"} for name in missing
            ],
        )
