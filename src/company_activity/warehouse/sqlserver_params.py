"""The SQL types pyodbc declares for parameters, taken from the columns in schema.py.

pyodbc sends every Python str as NVARCHAR unless told otherwise (`Cursor.setinputsizes`). A
VARCHAR column compared with an NVARCHAR parameter is converted on every row (NVARCHAR has
the higher data type precedence), which can turn an index seek into a scan: Microsoft's
"Data type precedence" reference (https://learn.microsoft.com/sql/t-sql/data-types/
data-type-precedence-transact-sql). So a string parameter named like a declared column is
sent with that column's type family and length.

Each entry is what `setinputsizes` takes for one parameter: `(sql_type, size, scale)`, or
None for pyodbc's default binding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from company_activity.warehouse.relations import Column, Table
from company_activity.warehouse.schema import TABLES

# ODBC SQL type codes (sql.h / sqlucode.h); pyodbc exposes the same numbers as
# pyodbc.SQL_VARCHAR and pyodbc.SQL_WVARCHAR, but pyodbc is imported only in azuresql.py.
SQL_VARCHAR = 12
SQL_WVARCHAR = -9

InputSize = tuple[int, int, int] | None


@lru_cache(maxsize=1)
def _columns_by_name() -> dict[str, tuple[bool, int]]:
    """Text columns' (is NVARCHAR, length) by name, where every declaration agrees."""
    seen: dict[str, set[str]] = {}
    first: dict[str, Column] = {}
    for table in TABLES:
        for column in table.columns:
            seen.setdefault(column.name, set()).add(column.sql_type)
            first.setdefault(column.name, column)
    found = {name: first[name].text_type for name, types in seen.items() if len(types) == 1}
    return {name: text for name, text in found.items() if text is not None}


def parameter_size(name: str, value: Any) -> InputSize:
    """The input size for a parameter named `name` (a declared column name, or not).

    A VARCHAR column's parameter goes as VARCHAR when the value is ASCII, which reads the
    same in every code page; other characters go as NVARCHAR, converted by the server
    without loss, because a VARCHAR parameter takes the database's default code page.
    """
    if not isinstance(value, str):
        return None
    text = _columns_by_name().get(name)
    if text is None:
        return None
    national, length = text
    # Never shorter than the value: a too-long value should fail to match, not to bind.
    size = 0 if length == 0 else max(length, len(value), 1)
    if national or not value.isascii():
        return (SQL_WVARCHAR, size, 0)
    return (SQL_VARCHAR, size, 0)


def parameter_sizes(names: Sequence[str], values: Sequence[Any]) -> list[InputSize] | None:
    """Input sizes for a statement's parameters, or None when none needs declaring."""
    sizes = [parameter_size(n, v) for n, v in zip(names, values, strict=True)]
    return sizes if any(s is not None for s in sizes) else None


def insert_sizes(table: Table | None, columns: Iterable[str]) -> list[InputSize] | None:
    """Input sizes for a bulk INSERT into `table` under fast_executemany.

    Text columns go as NVARCHAR of the column's length: an INSERT has no seek to keep, and
    the server converts NVARCHAR into a VARCHAR column's collation without loss, whatever
    the database's default code page. (N)VARCHAR(MAX) columns go as `(SQL_WVARCHAR, 0, 0)`,
    what pyodbc documents for MAX columns under fast_executemany ("Tips and Tricks by
    Database Platform", SQL Server): without it the driver describes them with size 0 and
    long values fail with "String data, right truncation". Other types keep pyodbc's binding.
    """
    if table is None:
        return None
    sizes: list[InputSize] = []
    for name in columns:
        column = next((c for c in table.columns if c.name == name), None)
        text = column.text_type if column is not None else None
        sizes.append(None if text is None else (SQL_WVARCHAR, text[1], 0))
    return sizes if any(s is not None for s in sizes) else None


def declared_table(name: str) -> Table | None:
    """The declared table called `name` (schema.table), None for others (temp tables)."""
    return next((t for t in TABLES if t.name == name), None)
