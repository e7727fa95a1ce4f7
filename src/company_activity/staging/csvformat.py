"""How a CRM export is written: its encoding, delimiter and header names (docs/staging.md).

Encoding: a BOM decides (UTF-8, UTF-16 LE or BE); without one the file is UTF-8, or the
single-byte encoding CRM_ENCODING names (cp1252 for a legacy spreadsheet). A line with bytes
the encoding cannot decode is rejected with the byte's offset in the file (counted from 0,
the BOM included).

Delimiter: CRM_DELIMITER; else the one a first line such as `sep=;` names (Excel writes and
reads that line; it is not a record); else the one of `,` `;` tab `|` that occurs most often
outside quotes in the header line (`,` when none does; ties go to that order).

Header: names in any case, with stray spaces. `name` and `company_name` both give the company
name; CRM_COLUMN_MAP maps any other export's names to ours.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from company_activity.crmformat import (
    CRM_COLUMNS,
    CRM_DELIMITERS,
    parse_crm_column_map,
    parse_crm_date_formats,
    parse_crm_encoding,
)
from company_activity.settings import Settings

#: Header names that give our columns without any setting.
DEFAULT_NAMES: dict[str, str] = {**{c: c for c in CRM_COLUMNS}, "name": "company_name"}

#: How a record that repeats the header is rejected (the reason names the header's line).
REPEATED_HEADER = "a repeated header row"

#: Delimiters detected from the header line, in the order that breaks ties.
DETECTED_DELIMITERS = (",", ";", "\t", "|")

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_QUOTED = re.compile(r'"[^"]*"')
_BARE_CR = re.compile(r"(?<=\r)(?!\n)(?=.)", re.DOTALL)  # just after a CR that no LF follows
_SEP_LINE = re.compile(r'sep=([^"\r\n])\r?\n?')


@dataclass(frozen=True)
class CrmFormat:
    """The CRM settings that say how to read an export (the defaults need none)."""

    delimiter: str | None = None  # None: detected from the header line
    encoding: str | None = None  # codec of a file without a BOM; None: UTF-8
    column_map: Mapping[str, str] = field(default_factory=dict)  # header name -> our column
    date_formats: tuple[str, ...] = ()  # strptime formats besides ISO-8601

    @classmethod
    def from_settings(cls, settings: Settings) -> CrmFormat:
        return cls(
            delimiter=CRM_DELIMITERS.get(settings.crm_delimiter),
            encoding=parse_crm_encoding(settings.crm_encoding),
            column_map=parse_crm_column_map(settings.crm_column_map),
            date_formats=parse_crm_date_formats(settings.crm_date_formats),
        )

    def names(self) -> dict[str, str]:
        """Header name (stripped, lower case) -> our column."""
        return {**DEFAULT_NAMES, **self.column_map}


@dataclass(frozen=True)
class Header:
    """Where each column sits (optional ones when present), and how many fields it has."""

    positions: dict[str, int]
    width: int
    line: int
    names: tuple[str, ...] = ()  # its fields, stripped and in lower case

    def repeated_by(self, fields: list[str]) -> str | None:
        """The reason for a record that repeats the header (two exports pasted together, a
        spreadsheet's repeated title row): its fields are names, not a company."""
        at = self.positions["company_id"]
        if (
            len(fields) != self.width
            or fields[at].strip().lower() != self.names[at]  # cheap, and rarely equal
            or [f.strip().lower() for f in fields] != list(self.names)
        ):
            return None
        return f"{REPEATED_HEADER} (the names of line {self.line})"


class PhysicalLine(NamedTuple):
    # A tuple, not a dataclass: one is built per line and construction cost shows at scale.
    number: int
    text: str  # with its line ending
    bad_bytes: str | None  # reason when the bytes could not be decoded


def detect_encoding(data: bytes, fallback: str | None) -> tuple[str, int]:
    """The file's codec and the length of its BOM (0 without one)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name, len(bom)
    return fallback or "utf-8", 0


def encoding_label(codec: str) -> str:
    """How a reason names an encoding: UTF-8, UTF-16, or the codec's own name."""
    if codec == "utf-8":
        return "UTF-8"
    if codec.startswith("utf-16"):
        return "UTF-16"
    return codec


def physical_lines(data: bytes, codec: str, offset: int = 0) -> Iterator[PhysicalLine]:
    """The lines of `data` (a file's bytes after `offset` bytes of BOM), each with its LF.

    UTF-16 lines end at an LF code unit; the others (UTF-8 and the single-byte encodings,
    which keep ASCII) at an LF byte. In a line that decodes cleanly, a CR that no LF follows
    ends a line too.
    """
    newline = "\n".encode(codec)
    unit = len(newline)
    start, number, size = 0, 0, len(data)
    while start < size:
        end = data.find(newline, start)
        while end != -1 and (end - start) % unit:
            end = data.find(newline, end + 1)
        stop = size if end == -1 else end + unit
        raw = data[start:stop]
        number += 1
        try:
            text, bad = raw.decode(codec), None
        except UnicodeDecodeError as exc:
            text = raw.decode(codec, errors="replace")
            bad = (
                f"not valid {encoding_label(codec)}: byte 0x{raw[exc.start]:02X} at byte offset "
                f"{offset + start + exc.start} (line {number})"
            )
        if bad is None and "\r" in text and _BARE_CR.search(text):
            # A CR alone ends a line too (a file edited on two systems mixes endings); inside
            # quotes the csv module keeps it in the value, as it does an LF.
            *parts, text = _BARE_CR.split(text)
            for part in parts:
                yield PhysicalLine(number, part, None)
                number += 1
        yield PhysicalLine(number, text, bad)
        start = stop


def detect_delimiter(line: str) -> str:
    """The delimiter of a header line: the candidate most frequent outside quotes."""
    bare = _QUOTED.sub("", line)
    counts = [bare.count(d) for d in DETECTED_DELIMITERS]
    best = max(counts)
    return DETECTED_DELIMITERS[counts.index(best)] if best else ","


def sep_line(data: bytes, codec: str) -> tuple[str, int] | None:
    """The delimiter an Excel `sep=X` first line names, and the bytes of that line before its
    ending (dropping them leaves a blank line 1, so line numbers stay); None without one."""
    first = next(physical_lines(data, codec), None)
    if first is None or first.bad_bytes or not (match := _SEP_LINE.fullmatch(first.text)):
        return None
    return match.group(1), len(first.text.rstrip("\r\n").encode(codec))


def first_line(data: bytes, codec: str) -> str:
    """The first non-blank line of the file (the header), decoded leniently."""
    for line in physical_lines(data, codec):
        if line.text.strip():
            return line.text
    return ""
