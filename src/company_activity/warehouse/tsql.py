"""T-SQL text handling shared by both engines: batches, parameters, transpiling."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from company_activity.errors import SqlContractError

_GO_LINE = re.compile(r"^\s*GO\s*;?\s*$", re.IGNORECASE | re.MULTILINE)

# Tokens that may hold an '@' without it being a parameter, skipped when scanning.
_SKIP = re.compile(
    r"'(?:[^']|'')*'"  # string literal
    r"|\[[^\]]*\]"  # bracketed identifier
    r"|--[^\n]*"  # line comment
    r"|/\*.*?\*/",  # block comment
    re.DOTALL,
)
_PARAM = re.compile(r"@@?[A-Za-z_][A-Za-z0-9_]*")


def split_batches(text: str) -> list[str]:
    """Split a script on lines holding only GO, dropping empty batches."""
    return [batch.strip() for batch in _GO_LINE.split(text) if batch.strip()]


def to_qmark(batch: str) -> tuple[str, list[str]]:
    """Rewrite @name parameters as ODBC '?' markers; return the SQL and names in order.

    Literals, bracketed identifiers and comments are left untouched, so '@x' in a string
    stays data.
    """
    out: list[str] = []
    names: list[str] = []
    position = 0
    for match in _SKIP.finditer(batch):
        out.append(_replace_params(batch[position : match.start()], names))
        out.append(match.group(0))
        position = match.end()
    out.append(_replace_params(batch[position:], names))
    return "".join(out), names


def _replace_params(chunk: str, names: list[str]) -> str:
    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        # '@@ROWCOUNT' and friends are system functions, not parameters.
        if token.startswith("@@"):
            return token
        names.append(token[1:])
        return "?"

    return _PARAM.sub(sub, chunk)


@dataclass(frozen=True)
class DuckStatement:
    """One statement transpiled for DuckDB, with the parameter names it uses."""

    sql: str
    params: tuple[str, ...]


@lru_cache(maxsize=512)
def transpile_batch(batch: str) -> tuple[DuckStatement, ...]:
    """Transpile one T-SQL batch to DuckDB statements, refusing anything unsupported."""
    try:
        parsed = sqlglot.parse(batch, read="tsql", error_level=ErrorLevel.RAISE)
        statements = []
        for expression in parsed:
            if expression is None:
                continue
            names = tuple(sorted({p.name for p in expression.find_all(exp.Parameter)}))
            sql = expression.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
            statements.append(DuckStatement(sql, names))
        return tuple(statements)
    except SqlglotError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SqlContractError(
            f"T-SQL does not transpile to DuckDB: {first_line}. Rewrite it within "
            "the dialect contract (docs/dialect-contract.md)."
        ) from None
