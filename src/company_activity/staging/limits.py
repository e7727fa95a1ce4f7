"""What the warehouse can hold: each measure's accepted range and each string's length limit.

Both follow from the columns declared in warehouse/schema.py (the one source), so staging
quarantines a value the model could not store or sum instead of letting a later merge fail.

**Measures.** A day's value of a measure lands in several places: its staging and analytics
columns, and the window sums and ratios of sql/populate_analytics.sql (a 30-day sum holds 30
days of it; usage_density, events / active_users, holds up to the day's events itself since a
ratio is only taken over at least one user). A measure's upper bound is the smallest over those
places of "the largest integer the type holds, divided by how many days' values it adds up".
tests/test_limits.py checks the multiples against the SQL's window frames.

**Strings** (dialect contract, rule 27). Azure SQL counts `VARCHAR(n)` in bytes: under a
`_UTF8` collation, n bytes of UTF-8; `NVARCHAR(n)` holds n UTF-16 code units (a character
beyond U+FFFF takes two). Under a non-UTF-8 collation a VARCHAR holds code-page bytes, never
more than the UTF-8 bytes of the same text, so counting UTF-8 bytes is safe there too.
Microsoft: "char and varchar (Transact-SQL)", "nchar and nvarchar (Transact-SQL)",
"Collation and Unicode support" (UTF-8 support).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from company_activity.warehouse.relations import Table
from company_activity.warehouse.schema import COMPANY_ACTIVITY_METRICS, PRODUCT_USAGE

#: The largest value of each T-SQL integer type (DuckDB's INTEGER and BIGINT are the same).
INTEGER_MAX = {"TINYINT": 255, "SMALLINT": 2**15 - 1, "INT": 2**31 - 1, "BIGINT": 2**63 - 1}

#: The widest window of sql/populate_analytics.sql (days summed) and the week.
WINDOW_DAYS = 30
WEEK_DAYS = 7
#: The engagement score's numerator is below this many days' active users (the bound noted
#: next to it in sql/populate_analytics.sql).
ENGAGEMENT_MULTIPLE = 63_000


def integer_max(sql_type: str) -> int:
    """The largest integer a T-SQL numeric type holds (DECIMAL(p,s): 10^(p-s) - 1)."""
    if sql_type in INTEGER_MAX:
        return INTEGER_MAX[sql_type]
    match = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", sql_type)
    if match is None:
        raise ValueError(f"{sql_type} is not a numeric type")
    return int(10 ** (int(match.group(1)) - int(match.group(2)))) - 1


@dataclass(frozen=True)
class Holder:
    """One place the model holds up to `multiple` days' values of a measure, in `sql_type`."""

    where: str
    sql_type: str
    multiple: int = 1

    @property
    def bound(self) -> int:
        return integer_max(self.sql_type) // self.multiple


def _column(table: Table, name: str, multiple: int = 1, note: str = "") -> Holder:
    where = f"{table.name}.{name}" + (f" ({note})" if note else "")
    return Holder(where, table.column(name).sql_type, multiple)


_METRICS = COMPANY_ACTIVITY_METRICS
# SQL Server sums a BIGINT column in BIGINT (its SUM's result type), so a window sum the table
# does not store is still a BIGINT while it is computed.
_SUM = "BIGINT"


@dataclass(frozen=True)
class Measure:
    """A non-negative integer measure of a usage record and every place that holds it."""

    name: str
    holders: tuple[Holder, ...]

    @property
    def maximum(self) -> int:
        return min(holder.bound for holder in self.holders)

    @property
    def limited_by(self) -> Holder:
        return min(self.holders, key=lambda holder: holder.bound)


ACTIVE_USERS = Measure(
    "active_users",
    (
        _column(PRODUCT_USAGE, "active_users"),
        _column(_METRICS, "active_users"),
        _column(_METRICS, "peak_active_users_30d", note="a 30-day maximum"),
        _column(_METRICS, "rolling_7d_active_users", WEEK_DAYS, "a 7-day sum"),
        Holder("users_30d, users_previous_7d (window sums)", _SUM, WINDOW_DAYS),
        _column(_METRICS, "active_users_dod_pct", note="(users - previous) / previous"),
        _column(_METRICS, "active_users_wow_pct", WEEK_DAYS, "(7 days - previous 7) / previous"),
        # populate_analytics.sql computes the ratios in BIGINT steps (contract rule 26): the
        # engagement score's numerator is below 63,000 days' users.
        Holder("engagement_score's numerator (BIGINT steps)", _SUM, ENGAGEMENT_MULTIPLE),
    ),
)

EVENTS = Measure(
    "events",
    (
        _column(PRODUCT_USAGE, "events"),
        _column(_METRICS, "events"),
        _column(_METRICS, "rolling_30d_events", WINDOW_DAYS, "a 30-day sum"),
        Holder("events_14d, events_prior_30d (window sums)", _SUM, WINDOW_DAYS),
        _column(_METRICS, "usage_density", note="events / active_users, users >= 1"),
        Holder("usage_density's quotient scaled by 10^4 (BIGINT steps)", _SUM, 10**4),
    ),
)

MEASURES: tuple[Measure, ...] = (ACTIVE_USERS, EVENTS)


# ---- strings -------------------------------------------------------------------------------

BYTES = "bytes"
UTF16 = "utf16"


@dataclass(frozen=True)
class TextLimit:
    """A string column's limit: `size` bytes of UTF-8 or UTF-16 code units."""

    column: str
    size: int
    unit: str

    def length_sql(self, expr: str) -> str:
        """The length of `expr` in this limit's unit."""
        return f"strlen({expr})" if self.unit == BYTES else utf16_len_sql(expr)

    def too_long_sql(self, expr: str) -> str:
        return f"{self.length_sql(expr)} > {self.size}"

    @property
    def reason(self) -> str:
        """The quarantine reason (no quotes in it: it is written into SQL as a literal).

        For NVARCHAR, characters as SQL Server counts them: UTF-16 code units."""
        unit = "bytes in UTF-8" if self.unit == BYTES else "characters"
        return f"{self.column} is longer than {self.size} {unit}"

    def rule_sql(self, expr: str) -> str:
        """A CASE branch rejecting a value that does not fit."""
        return f"WHEN {self.too_long_sql(expr)} THEN '{self.reason}'"


def text_limit(table: Table, name: str) -> TextLimit:
    """The limit of a declared VARCHAR(n) or NVARCHAR(n) column (rule 27)."""
    column = table.column(name)
    text = column.text_type
    if text is None or not text[1]:
        raise ValueError(f"{table.name}.{name} ({column.sql_type}) has no length limit")
    unicode, size = text
    return TextLimit(name, size, UTF16 if unicode else BYTES)


def utf16_len_sql(expr: str) -> str:
    """Length as SQL Server counts NVARCHAR: UTF-16 units (characters beyond U+FFFF count 2)."""
    return (
        f"CASE WHEN strlen({expr}) = length({expr}) THEN length({expr}) "
        f"ELSE length({expr}) + length(regexp_replace({expr}, "
        f"'[^\\x{{10000}}-\\x{{10FFFF}}]', '', 'g')) END"
    )


def fits(limit: TextLimit, text: str) -> bool:
    """Python's view of the same limit (tests, messages)."""
    if limit.unit == BYTES:
        return len(text.encode("utf-8")) <= limit.size
    return len(text.encode("utf-16-le")) // 2 <= limit.size
