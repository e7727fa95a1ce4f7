"""The CRM export settings' values, parsed and validated (CRM_COLUMN_MAP, CRM_DELIMITER,
CRM_ENCODING, CRM_DATE_FORMATS in settings.py; docs/staging.md describes them).

Each parser raises ConfigError naming the setting and the bad part, so a wrong value stops
the pipeline at start-up rather than at the first CRM load.
"""

from __future__ import annotations

import codecs
import re

from company_activity.errors import ConfigError

#: Columns a CRM export must have; others are ignored (and stay in the raw line).
CRM_REQUIRED_COLUMNS: tuple[str, ...] = (
    "company_id",
    "company_name",
    "country",
    "industry_tag",
    "last_contact_at",
)
#: Columns read when the export has them (the seed's sample has file_date).
CRM_OPTIONAL_COLUMNS: tuple[str, ...] = ("file_date",)
#: Our CRM columns, the ones an export's header names can be mapped to (CRM_COLUMN_MAP).
CRM_COLUMNS = CRM_REQUIRED_COLUMNS + CRM_OPTIONAL_COLUMNS

#: CRM_DELIMITER's names for the delimiters it can force.
CRM_DELIMITERS: dict[str, str] = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}

# strptime directives both Python and DuckDB read the same way; a time zone is left out on
# purpose (a CRM time without ISO-8601's offset is UTC).
_DATE_DIRECTIVES = frozenset("dmYybBHIMSfpaAj%")


def parse_crm_column_map(text: str) -> dict[str, str]:
    """CRM_COLUMN_MAP as {export header name (stripped, lower case): our column}.

    The text is `Export name=our_column` pairs separated by `;`; raises ConfigError naming
    the bad pair.
    """
    mapping: dict[str, str] = {}
    for pair in filter(str.strip, text.split(";")):
        name, sep, column = pair.partition("=")
        key, column = name.strip().lower(), column.strip().lower()
        if not sep or not key or column not in CRM_COLUMNS:
            raise ConfigError(
                f"CRM_COLUMN_MAP: {pair.strip()!r} must be `Export name=column` with column one "
                f"of {', '.join(CRM_COLUMNS)} (pairs separated by ';')."
            )
        if key in mapping and mapping[key] != column:
            raise ConfigError(
                f"CRM_COLUMN_MAP maps {name.strip()!r} twice ({mapping[key]} and {column})."
            )
        mapping[key] = column
    return mapping


def parse_crm_date_formats(text: str) -> tuple[str, ...]:
    """CRM_DATE_FORMATS as a tuple of strptime formats (separated by `;`).

    Each needs a year, a month and a day and may use only %d %m %Y %y %b %B %H %I %M %S %f
    %p %a %A %j %%; raises ConfigError naming the bad format.
    """
    formats = tuple(f.strip() for f in text.split(";") if f.strip())
    for fmt in formats:
        directives = set(re.findall(r"%(.)", fmt))
        unknown = sorted(directives - _DATE_DIRECTIVES)
        if (
            unknown
            or fmt.endswith("%")
            or not (
                directives & {"Y", "y"} and (directives & {"m", "b", "B"} and "d" in directives)
            )
        ):
            problem = (
                f"%{unknown[0]} is not supported"
                if unknown
                else "it ends in a lone %"
                if fmt.endswith("%")
                else "it needs %Y, %m and %d"
            )
            raise ConfigError(
                f"CRM_DATE_FORMATS: {fmt!r} is not a usable date format ({problem}); list "
                "strptime formats such as %m/%d/%Y, separated by ';'."
            )
    return formats


def parse_crm_encoding(text: str) -> str | None:
    """CRM_ENCODING as a codec name, or None for `auto` (UTF-8; UTF-16 by its BOM).

    Anything else must be a single-byte encoding that keeps ASCII (cp1252, latin-1,
    iso-8859-15, ...); raises ConfigError otherwise.
    """
    name = text.strip()
    if name.lower() in ("auto", "utf-8", "utf8"):
        return None
    try:
        codec = codecs.lookup(name)
        ascii_kept = bytes(range(128)).decode(codec.name) == "".join(map(chr, range(128)))
        single_byte = len(b"\xc3\xa9\xe6\x97\xa5".decode(codec.name, "replace")) == 5
    except (LookupError, UnicodeDecodeError):
        ascii_kept = single_byte = False
    if not (ascii_kept and single_byte):
        raise ConfigError(
            f"CRM_ENCODING must be auto or a single-byte encoding such as cp1252 or latin-1, "
            f"got {name!r}."
        )
    return codec.name
