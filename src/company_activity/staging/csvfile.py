"""Read a CRM CSV export as Arrow batches of records, each with its raw text and line number.

Accepted: UTF-8 with or without a BOM, RFC 4180 quoting (delimiters, quotes and newlines inside
quoted fields), LF or CRLF, a space after a delimiter, header names in any case and order with
stray spaces, and extra columns (ignored, but kept in the raw text). Blank lines are skipped.

Python's csv module pulls physical lines one at a time, so the lines it consumed for a record
are that record's raw text. A record the module cannot parse (an unclosed quote, text after a
closing quote) is rejected on its first line alone and parsing resumes on the next line, so one
stray quote never swallows the rest of the file.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pyarrow as pa

from company_activity.errors import DataError

#: Columns the export must have (lower case); others are ignored.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "company_id",
    "company_name",
    "country",
    "industry_tag",
    "last_contact_at",
)

#: Records per Arrow batch.
BATCH_RECORDS = 50_000

BATCH_SCHEMA = pa.schema(
    [
        pa.field("src_line_number", pa.int32()),
        pa.field("raw", pa.string()),
        pa.field("pre_reason", pa.string()),
        pa.field("n_fields", pa.int32()),
        *(pa.field(f"f_{name}", pa.string()) for name in REQUIRED_COLUMNS),
    ]
)

_BOM = "\ufeff"
_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class PhysicalLine:
    number: int
    text: str  # with its line ending
    bad_utf8: str | None  # reason when the bytes were not UTF-8


@dataclass(frozen=True)
class Header:
    """Where each required column sits, and how many fields a record must have."""

    positions: dict[str, int]
    width: int
    line: int


Record = tuple[int, str, list[str] | None, str | None]


def _byte_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Physical lines, each with its LF, read in chunks (the stream need not be line-iterable)."""
    carry = b""
    while chunk := stream.read(_CHUNK_BYTES):
        pieces = (carry + chunk).split(b"\n")
        carry = pieces.pop()
        for piece in pieces:
            yield piece + b"\n"
    if carry:
        yield carry


class CsvRecords:
    """Iterate a CSV byte stream as (first line, raw text, fields or None, reason) records."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._source = self._physical_lines(stream)
        self._pending: deque[PhysicalLine] = deque()
        self._consumed: list[PhysicalLine] = []

    @staticmethod
    def _physical_lines(stream: IO[bytes]) -> Iterator[PhysicalLine]:
        for number, raw in enumerate(_byte_lines(stream), start=1):
            try:
                text, bad = raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", errors="replace")
                bad = f"not valid UTF-8 (line {number}, byte {exc.start + 1})"
            if number == 1 and text.startswith(_BOM):
                text = text[len(_BOM) :]
            yield PhysicalLine(number, text, bad)

    def _feed(self) -> Iterator[str]:
        """The lines the csv module reads, remembering which it took for the record."""
        while True:
            if self._pending:
                line = self._pending.popleft()
            else:
                next_line = next(self._source, None)
                if next_line is None:
                    return
                line = next_line
            self._consumed.append(line)
            yield line.text

    def __iter__(self) -> Iterator[Record]:
        while True:
            reader = csv.reader(self._feed(), strict=True, skipinitialspace=True)
            while True:
                self._consumed = []
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    first, *rest = self._consumed or [PhysicalLine(0, "", None)]
                    # Reject the first line only and re-read the others with a fresh reader.
                    self._pending.extendleft(reversed(rest))
                    yield first.number, _strip_ending(first.text), None, f"malformed CSV: {exc}"
                    break
                lines = self._consumed
                raw = _strip_ending("".join(line.text for line in lines))
                if not raw.strip():
                    continue  # a blank line is not a record
                bad = next((line.bad_utf8 for line in lines if line.bad_utf8), None)
                yield lines[0].number, raw, fields, bad


def _strip_ending(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


def read_header(records: Iterator[Record], where: str) -> Header:
    """Map the header's column names (any case, stray spaces) to positions; fail clearly."""
    first = next(records, None)
    if first is None:
        raise DataError(
            f"CRM file {where} is empty: it has no header row. Export the snapshot again."
        )
    number, raw, fields, reason = first
    if fields is None or reason:
        raise DataError(f"CRM file {where}: the header on line {number} cannot be read ({reason}).")
    names = [name.strip().lower() for name in fields]
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in REQUIRED_COLUMNS:
            if name in positions:
                raise DataError(
                    f"CRM file {where}: column {name} appears twice in the header; "
                    "remove one and load again."
                )
            positions[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise DataError(
            f"CRM file {where} has no {', '.join(missing)} column (header: {raw[:200]!r}). "
            f"The export needs the columns {', '.join(REQUIRED_COLUMNS)}, in any order."
        )
    return Header(positions, len(fields), number)


def record_batches(stream: IO[bytes], where: str) -> tuple[Header, Iterator[pa.Table]]:
    """The header and an iterator of record batches (BATCH_SCHEMA); `where` names the file."""
    records = iter(CsvRecords(stream))
    header = read_header(records, where)
    return header, _batches(records, header)


def _batches(records: Iterator[Record], header: Header) -> Iterator[pa.Table]:
    columns: list[list[object]] = [[] for _ in BATCH_SCHEMA]
    for number, raw, fields, reason in records:
        columns[0].append(number)
        columns[1].append(raw)
        columns[2].append(reason)
        columns[3].append(len(fields) if fields is not None else 0)
        for offset, name in enumerate(REQUIRED_COLUMNS, start=4):
            position = header.positions[name]
            value = fields[position] if fields is not None and position < len(fields) else None
            columns[offset].append(value)
        if len(columns[0]) >= BATCH_RECORDS:
            yield pa.Table.from_pydict(
                dict(zip(BATCH_SCHEMA.names, columns, strict=True)), BATCH_SCHEMA
            )
            columns = [[] for _ in BATCH_SCHEMA]
    if columns[0]:
        yield pa.Table.from_pydict(
            dict(zip(BATCH_SCHEMA.names, columns, strict=True)), BATCH_SCHEMA
        )
