"""What a warehouse declaration is: a column, a table or a view, and a T-SQL type's DuckDB type.

The declarations themselves (every table, view, column and length) are in schema.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TEXT_TYPE = re.compile(r"(N?)VARCHAR\((\d+|MAX)\)")


@dataclass(frozen=True)
class Column:
    """One column: name, T-SQL type, nullability and a short description."""

    name: str
    sql_type: str
    nullable: bool = True
    description: str = ""
    #: T-SQL collation (Azure SQL DDL only); DuckDB compares binary anyway.
    collation: str | None = None

    @property
    def text_type(self) -> tuple[bool, int] | None:
        """(is NVARCHAR, length; 0 for MAX) of a (N)VARCHAR column, None for other types."""
        match = _TEXT_TYPE.fullmatch(self.sql_type)
        if match is None:
            return None
        return match.group(1) == "N", 0 if match.group(2) == "MAX" else int(match.group(2))

    @property
    def max_length(self) -> int | None:
        """Character limit of a (N)VARCHAR(n) column, None for MAX or non-text types."""
        text = self.text_type
        return text[1] or None if text else None


@dataclass(frozen=True)
class Relation:
    """What tables and views share: a schema-qualified name and the declared columns."""

    name: str
    columns: tuple[Column, ...]

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".")[1]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Table(Relation):
    """One table: schema-qualified name, columns and primary key.

    `duckdb_enforces_key` False: the embedded engine gets no PRIMARY KEY constraint. For the
    big tables whose keys are unique by construction (a date's staging rows are replaced whole,
    MERGE sources are deduplicated, and validate checks the keys) DuckDB's key index costs
    most of the write time (docs/performance.md); Azure SQL and Synapse keep the key.
    """

    primary_key: tuple[str, ...] = ()
    description: str = ""
    duckdb_enforces_key: bool = True
    #: Extra nonclustered indexes (column lists), Azure SQL only: DuckDB scans columnar
    #: segments with min/max pruning and would only pay for an index on every insert.
    indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class View(Relation):
    """One view: the columns its readers see and the file under sql/ holding its SELECT.

    The SELECT is T-SQL kept once (dialect contract); ddl.py renders it as CREATE VIEW for
    each engine. Its CASTs give each column the declared type, and a test proves DuckDB's
    information_schema agrees (a view's columns are all nullable there).
    """

    query_file: str = ""
    description: str = ""


_DUCKDB_TYPES = {
    "DATE": "DATE",
    "DATETIME2(6)": "TIMESTAMP",
    "INT": "INTEGER",
    "BIGINT": "BIGINT",
    "SMALLINT": "SMALLINT",
}


def duckdb_type(sql_type: str) -> str:
    """The DuckDB type that stores a declared T-SQL type."""
    if sql_type in _DUCKDB_TYPES:
        return _DUCKDB_TYPES[sql_type]
    if re.fullmatch(r"N?VARCHAR\((\d+|MAX)\)", sql_type):
        return "VARCHAR"
    match = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", sql_type)
    if match:
        return f"DECIMAL({match.group(1)},{match.group(2)})"
    raise ValueError(f"no DuckDB mapping for T-SQL type {sql_type}")
