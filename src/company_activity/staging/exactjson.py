"""Python's strict reading of the few NDJSON lines DuckDB's parser cannot judge exactly.

The staging rules parse every line in DuckDB and mark (`needs_exact`) the three kinds of line
that need more; only those lines are read here, with Python's json module, and the rules run
again over them with these verdicts joined (staging/writer.py). Clean input costs nothing here.

- A trailing comma, which DuckDB accepts and strict JSON (Python, SQL Server's JSON functions)
  does not: `not valid JSON (<detail>)`.
- A nested object: a key twice in it is as ambiguous as at the top level (DuckDB keeps the
  first value, Python the last), and the rules' json_keys() sees only the top level:
  `duplicate key "<key>"`.
- A measure written as a JSON number with a fraction or an exponent (`12.0`, `1.2e1`, `1e14`):
  DuckDB reads it as a DOUBLE, which loses both the exact value (`99999999999999.00001` becomes
  99999999999999.0) and the token the API sent. Here the token is kept as sent and its exact
  decimal value decides whether it is an integer (RFC 8259, section 6).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NamedTuple

import pyarrow as pa

#: The measures a line carries, read exactly when written with a fraction or an exponent.
MEASURES = ("active_users", "events")

# An integral value with this many digits or more is beyond every integer column; its digits
# are not materialised (a token like 1e999999999 would otherwise build a huge integer).
_BEYOND_DIGITS = 40

EXACT_SCHEMA = pa.schema(
    [
        pa.field("src_line_number", pa.int32()),
        pa.field("json_reason", pa.string()),
        pa.field("duplicate_key", pa.string()),
        *(
            pa.field(f"{measure}_{kind}", pa.string())
            for measure in MEASURES
            for kind in ("token", "integer")
        ),
    ]
)

#: DuckDB's JSON parser accepts trailing commas, which strict JSON rejects: lines matching this
#: cheap superset are read here. (NaN and Infinity, which DuckDB and Python both accept, are
#: rejected wherever staging reads a value and tolerated in fields it does not read.)
LENIENT_JSON = r",\s*[}\]]"


class _Number(str):
    """A JSON number token exactly as sent."""


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


class Reading(NamedTuple):
    """What Python reads in one line."""

    reason: str | None  # why it is not strict JSON
    duplicate_key: str | None  # a key some object of the line names twice (the first found)
    tokens: dict[str, str]  # measure -> its JSON number token as sent


def read_line(line: str) -> Reading:
    """Read one line strictly, keeping its measures' number tokens."""
    try:
        document = json.loads(
            line,
            object_pairs_hook=_unique_pairs,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_Number,
        )
    except _DuplicateKey as exc:
        return Reading(None, exc.key, {})
    except ValueError as exc:  # json.JSONDecodeError
        message = re.sub(r":\s*line \d+ column \d+ \(char \d+\)", "", str(exc))
        return Reading(f"not valid JSON ({message})", None, {})
    except RecursionError:
        return Reading("not valid JSON (nested too deeply)", None, {})
    if not isinstance(document, dict):
        return Reading(None, None, {})
    tokens = {m: document[m] for m in MEASURES if isinstance(document.get(m), _Number)}
    return Reading(None, None, tokens)


def integer_text(token: str) -> str | None:
    """The integer a JSON number token denotes, as digits; None when it is not integral.

    `12.0`, `1.2e1` and `120e-1` are 12; `12.5`, `NaN` and `Infinity` are not integers. A value
    of 40 digits or more comes back as 40 nines (with its sign): beyond every integer type, so
    the range rule rejects it, quoting the token as sent.
    """
    value = Decimal(token)  # every number of the JSON grammar, NaN and Infinity parse
    if not value.is_finite() or (value.adjusted() < 0 and not value.is_zero()):
        return None  # not a number, or 0 < |value| < 1
    if value.adjusted() >= _BEYOND_DIGITS:
        return ("-" if value.is_signed() else "") + "9" * _BEYOND_DIGITS
    if value != value.to_integral_value():
        return None
    return str(int(value))


def read_exactly(lines: pa.Table) -> pa.Table:
    """Verdicts (EXACT_SCHEMA) for lines given as (src_line_number, raw) columns.

    `<measure>_token` is the number as sent (NULL when the value was not a JSON number) and
    `<measure>_integer` its integer digits, or the token again when it is not an integer.
    """
    columns: dict[str, list[Any]] = {name: [] for name in EXACT_SCHEMA.names}
    numbers, raws = (column.to_pylist() for column in lines.columns[:2])
    for number, raw in zip(numbers, raws, strict=True):
        reason, duplicate_key, tokens = read_line(raw)
        columns["src_line_number"].append(number)
        columns["json_reason"].append(reason)
        columns["duplicate_key"].append(duplicate_key)
        for measure in MEASURES:
            token = tokens.get(measure)
            exact = None if token is None else integer_text(token)
            columns[f"{measure}_token"].append(None if token is None else str(token))
            columns[f"{measure}_integer"].append(str(token) if exact is None and token else exact)
    return pa.Table.from_pydict(columns, EXACT_SCHEMA)
