"""Read a CRM CSV export as Arrow batches of records, each with its raw text and line number.

Accepted: the encodings, delimiters and header names of csvformat.py, RFC 4180 quoting
(delimiters, quotes and newlines inside quoted fields), LF or CRLF line endings (or CR alone,
in a file without any LF or mixed with them), a space after a delimiter,
and extra columns (ignored, but kept in the raw text). Blank lines are skipped; a record that
repeats the header is rejected (Header.repeated_by). A record may
have fewer fields than the header (the rules read the missing ones as blank).

Python's csv module pulls physical lines one at a time, so the lines it consumed for a record
are that record's raw text. A record the module cannot parse (an unclosed quote, text after a
closing quote) is rejected on its first line alone and parsing resumes on the next line, so one
stray quote never swallows the rest of the file.

A line with no quote, CR (other than a CRLF ending) or NUL cannot start a multi-line record
or fail to parse, and the csv module would split it on the delimiter and drop the spaces after
each delimiter. Such lines are split that way directly: a whole UTF-8 file of them (the usual
export; other encodings are transcoded first when they decode cleanly) in Arrow's kernels, a
lone one in Python, four times faster than the module line by line and with the same fields
(tests/test_csv_plain_path.py compares the paths).
"""

from __future__ import annotations

import contextlib
import csv
from collections import deque
from collections.abc import Iterator, Mapping
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

from company_activity.crmformat import CRM_COLUMNS, CRM_REQUIRED_COLUMNS
from company_activity.errors import DataError
from company_activity.staging.csvformat import (
    DEFAULT_NAMES,
    CrmFormat,
    Header,
    PhysicalLine,
    detect_delimiter,
    detect_encoding,
    first_line,
    physical_lines,
    sep_line,
)

#: Records per Arrow batch.
BATCH_RECORDS = 50_000

BATCH_SCHEMA = pa.schema(
    [
        pa.field("src_line_number", pa.int32()),
        pa.field("raw", pa.string()),
        pa.field("pre_reason", pa.string()),
        pa.field("n_fields", pa.int32()),
        *(pa.field(f"f_{name}", pa.string()) for name in CRM_COLUMNS),
    ]
)

_CHUNK_BYTES = 1024 * 1024


Record = tuple[int, str, list[str] | None, str | None]


class CsvRecords:
    """Iterate decoded lines as (first line, raw text, fields or None, reason) records."""

    def __init__(self, lines: Iterator[PhysicalLine], delimiter: str = ",") -> None:
        self._source = lines
        self._delimiter = delimiter
        self._pending: deque[PhysicalLine] = deque()
        self._consumed: list[PhysicalLine] = []

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

    def _next_line(self) -> PhysicalLine | None:
        if self._pending:
            return self._pending.popleft()
        return next(self._source, None)

    def __iter__(self) -> Iterator[Record]:
        while True:
            reader = csv.reader(
                self._feed(), delimiter=self._delimiter, strict=True, skipinitialspace=True
            )
            while True:
                line = self._next_line()
                if line is None:
                    return
                fields = _simple_fields(line.text, self._delimiter)
                if fields is not None:
                    # The csv module keeps no state between records, so skipping it for a
                    # simple line leaves the reader where it was (see the module docstring).
                    raw = _strip_ending(line.text)
                    if raw.strip():  # a blank line is not a record
                        yield line.number, raw, fields, line.bad_bytes
                    continue
                self._pending.appendleft(line)
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
                bad = next((line.bad_bytes for line in lines if line.bad_bytes), None)
                yield lines[0].number, raw, fields, bad


def _simple_fields(text: str, delimiter: str = ",") -> list[str] | None:
    """The fields of a line the csv module would parse as one plain record, else None.

    Plain: no quote, CR or NUL once its LF or CRLF ending is off. The module then splits on
    the delimiter and, with skipinitialspace, drops the spaces (only ' ') after each one.
    """
    body = text[:-1] if text.endswith("\n") else text
    if body.endswith("\r"):
        body = body[:-1]
    if '"' in body or "\r" in body or "\x00" in body or len(body) > csv.field_size_limit():
        return None  # the module's own parse (or its error) decides
    if not body:
        return []
    return [field.lstrip(" ") for field in body.split(delimiter)]


def _strip_ending(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


def read_header(
    records: Iterator[Record], where: str, names: Mapping[str, str] | None = None
) -> Header:
    """Map the header's column names (any case, stray spaces) to positions; fail clearly.

    `names` maps a header name (stripped, lower case) to our column (CrmFormat.names()).
    """
    names = DEFAULT_NAMES if names is None else names
    first = next(records, None)
    if first is None:
        raise DataError(
            f"CRM file {where} is empty: it has no header row. Export the snapshot again."
        )
    number, raw, fields, reason = first
    if "\x00" in raw:  # every other byte of an ASCII header read as UTF-8
        raise DataError(
            f"CRM file {where}: its header holds NUL characters, as UTF-16 without its byte "
            "order mark does. Export it again as UTF-8 (with or without a BOM) or UTF-16 with "
            "its BOM."
        )
    if fields is None or reason:
        raise DataError(f"CRM file {where}: the header on line {number} cannot be read ({reason}).")
    positions: dict[str, int] = {}
    found: dict[str, str] = {}
    for index, name in enumerate(fields):
        column = names.get(name.strip().lower())
        if column is None:
            continue
        if column in positions:
            twice = (
                f"column {column} appears twice in the header"
                if found[column].strip().lower() == name.strip().lower()
                else f"columns {found[column].strip()!r} and {name.strip()!r} both give {column}"
            )
            raise DataError(f"CRM file {where}: {twice}; remove one and load again.")
        positions[column] = index
        found[column] = name
    missing = [name for name in CRM_REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise DataError(
            f"CRM file {where} has no {', '.join(missing)} column (header: {raw[:200]!r}). "
            f"The export needs the columns {', '.join(CRM_REQUIRED_COLUMNS)} (or name for "
            "company_name), in any order; CRM_COLUMN_MAP maps other names to these."
        )
    return Header(positions, len(fields), number, tuple(f.strip().lower() for f in fields))


def record_batches(
    stream: IO[bytes], where: str, fmt: CrmFormat | None = None
) -> tuple[Header, Iterator[pa.Table]]:
    """The header and an iterator of record batches (BATCH_SCHEMA); `where` names the file.

    The file is read whole (a CRM export is a few MB even at 100,000 companies). A plain UTF-8
    file (see _plain_lines) is split in Arrow's kernels; any other goes through the csv module.
    """
    fmt = fmt or CrmFormat()
    chunks: list[bytes] = []
    while chunk := stream.read(_CHUNK_BYTES):
        chunks.append(chunk)
    data = b"".join(chunks)
    codec, bom = detect_encoding(data, fmt.encoding)
    body = data[bom:]
    body, codec = _transcoded(_lf_endings(body, codec), codec)
    offset, delimiter = bom, fmt.delimiter
    sep = sep_line(body, codec)
    if sep is not None:
        named, cut = sep
        body, offset, delimiter = body[cut:], offset + cut, delimiter or named
    delimiter = delimiter or detect_delimiter(first_line(body, codec))
    names = fmt.names()
    plain = _plain_lines(body) if codec == "utf-8" else None
    if plain is None:
        records = iter(CsvRecords(physical_lines(body, codec, offset), delimiter))
        header = read_header(records, where, names)
        return header, _batches(records, header)
    numbers, lines = plain
    first = lines[0].as_py()
    header = read_header(
        iter([(numbers[0].as_py(), first, _simple_fields(first, delimiter), None)]), where, names
    )
    return header, _plain_batches(numbers[1:], lines[1:], header, delimiter)


def _lf_endings(body: bytes, codec: str) -> bytes:
    """A file whose lines end in CR alone (old Mac spreadsheets) with LF endings instead.

    Only a file with no LF at all that decodes cleanly: anything else is left as it is. The
    line count is unchanged (a CR inside a quoted value becomes a newline there too).
    """
    if b"\n" in body or b"\r" not in body:  # an LF code unit holds an LF byte in every codec
        return body
    with contextlib.suppress(UnicodeDecodeError):
        text = body.decode(codec)
        if "\n" not in text:
            return text.replace("\r", "\n").encode(codec)
    return body


def _transcoded(body: bytes, codec: str) -> tuple[bytes, str]:
    """A file in another encoding as UTF-8 when it decodes cleanly (it then takes the UTF-8
    paths); else unchanged, to be read line by line so a bad byte costs only its line."""
    if codec != "utf-8":
        with contextlib.suppress(UnicodeDecodeError):
            return body.decode(codec).encode("utf-8"), "utf-8"
    return body, codec


# Characters that are never whitespace: a line holding one is not blank, no Python needed.
_NOT_BLANK = "[0-9A-Za-z,;|]"


def _plain_lines(data: bytes) -> tuple[pa.Array, pa.Array] | None:
    """The non-blank lines of a plain file and their numbers; None when it is not plain.

    Plain: valid UTF-8 (its BOM already off) without a quote, a NUL or a CR outside CRLF
    endings, and no line over the csv module's field size limit. Every line is then a record
    _simple_fields splits exactly as the module would (with any of the delimiters), and no
    record can span lines or fail to parse.
    """
    body = _plain_body(data)
    if body is None:
        return None
    pieces = pc.split_pattern(pa.array([body], pa.binary()), b"\n").flatten()
    if pc.max(pc.binary_length(pieces)).as_py() > csv.field_size_limit():
        return None
    try:
        lines = pieces.cast(pa.string())
    except pa.ArrowInvalid:
        return None  # not UTF-8: the slow path names the line and byte
    if b"\r" in body:
        lines = pc.utf8_rtrim(lines, characters="\r")
    count = len(lines)
    numbers = pc.cumulative_sum(pa.nulls(count, pa.int32()).fill_null(1)).cast(pa.int32())
    keep = pc.match_substring_regex(lines, _NOT_BLANK)
    if not pc.all(keep).as_py():
        # The few others: blank as the slow path decides it (Python's whitespace).
        maybe = pc.indices_nonzero(pc.invert(keep)).to_pylist()
        flags = keep.to_pylist()
        for index in maybe:
            flags[index] = bool(lines[index].as_py().strip())
        keep = pa.array(flags, pa.bool_())
        numbers, lines = numbers.filter(keep), lines.filter(keep)
    if len(lines) == 0:
        return None
    return numbers, lines


def _plain_body(data: bytes) -> bytes | None:
    """The file without its final LF, if no byte rules out the plain path."""
    if b'"' in data or b"\x00" in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    body = data[:-1] if data.endswith(b"\n") else data
    return body or None


def _plain_batches(
    numbers: pa.Array, lines: pa.Array, header: Header, delimiter: str = ","
) -> Iterator[pa.Table]:
    """The records of a plain file's lines (after the header) as BATCH_SCHEMA batches."""
    for start in range(0, len(lines), BATCH_RECORDS):
        part = lines.slice(start, BATCH_RECORDS)
        widths = pc.list_value_length(pc.split_pattern(part, delimiter)).cast(pa.int32())
        # Padding with delimiters makes every position exist; past a record's width it is NULL.
        last = max(header.positions.values())
        padded = pc.split_pattern(
            pc.binary_join_element_wise(part, delimiter * (last + 1), ""), delimiter
        )
        columns = []
        for name in CRM_COLUMNS:
            position = header.positions.get(name)
            if position is None:
                columns.append(pa.nulls(len(part), pa.string()))
                continue
            value = pc.utf8_ltrim(pc.list_element(padded, position), characters=" ")
            columns.append(pc.if_else(pc.greater(widths, position), value, None))
        yield pa.Table.from_arrays(
            [
                numbers.slice(start, BATCH_RECORDS),
                part,
                _repeated_headers(part, columns[_ID_INDEX], header, delimiter),
                widths,
                *columns,
            ],
            schema=BATCH_SCHEMA,
        )


def _repeated_headers(lines: pa.Array, ids: pa.Array, header: Header, delimiter: str) -> pa.Array:
    """pre_reason for a plain batch: Header.repeated_by for the few lines whose id field is
    the header's own name for it, NULL for all others."""
    name = header.names[header.positions["company_id"]]
    maybe = pc.equal(pc.utf8_lower(pc.utf8_trim_whitespace(ids)), name).fill_null(False)
    if not pc.any(maybe).as_py():
        return pa.nulls(len(lines), pa.string())
    reasons: list[str | None] = [None] * len(lines)
    for index in pc.indices_nonzero(maybe).to_pylist():
        reasons[index] = header.repeated_by(lines[index].as_py().split(delimiter))
    return pa.array(reasons, pa.string())


_ID_INDEX = CRM_COLUMNS.index("company_id")  # company_id's place among the record's columns

# The position of a column the header lacks: past every record's end, so it reads as NULL.
_ABSENT = 1 << 62


def _batches(records: Iterator[Record], header: Header) -> Iterator[pa.Table]:
    columns: list[list[object]] = [[] for _ in BATCH_SCHEMA]
    # An absent optional column reads as past every record's end: NULL.
    positions = [header.positions.get(name, _ABSENT) for name in CRM_COLUMNS]
    # Appends bound once: this loop runs for every record of the file.
    numbers, raws, reasons, widths = (column.append for column in columns[:4])
    values = [(c.append, p) for c, p in zip(columns[4:], positions, strict=True)]
    for number, raw, fields, reason in records:
        numbers(number)
        raws(raw)
        reasons(header.repeated_by(fields) if fields is not None and reason is None else reason)
        if fields is None:
            widths(0)
            for append, _position in values:
                append(None)
        else:
            width = len(fields)
            widths(width)
            for append, position in values:
                append(fields[position] if position < width else None)
        if len(columns[0]) >= BATCH_RECORDS:
            yield pa.Table.from_pydict(
                dict(zip(BATCH_SCHEMA.names, columns, strict=True)), BATCH_SCHEMA
            )
            for column in columns:
                column.clear()
    if columns[0]:
        yield pa.Table.from_pydict(
            dict(zip(BATCH_SCHEMA.names, columns, strict=True)), BATCH_SCHEMA
        )
