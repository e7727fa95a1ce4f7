"""The dialect-contract linter for transform files (docs/dialect-contract.md).

Each rule carries the contract's number. Name-based rules are patterns over the text with
comments and string literals blanked out (sqlglot normalises some names away, ISNULL into
COALESCE for one); structural rules walk the sqlglot AST.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: where and why."""

    line: int
    rule: int
    message: str

    def format(self, path: str) -> str:
        return f"{path}:{self.line}: rule {self.rule}: {self.message}"


_COMMENT_OR_STRING = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL)
_STRING = re.compile(r"'((?:[^']|'')*)'")


def _blank(text: str) -> str:
    """Blank comments and string contents, keeping every newline so line numbers hold."""

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        body = re.sub(r"[^\n]", " ", token)
        return f"'{body[1:-1]}'" if token.startswith("'") else body

    return _COMMENT_OR_STRING.sub(repl, text)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


_CLOCK = r"GETDATE|GETUTCDATE|SYSDATETIME|SYSUTCDATETIME|SYSDATETIMEOFFSET|CURRENT_TIMESTAMP|NOW"

# (rule, pattern over blanked text, message)
_PATTERNS: tuple[tuple[int, re.Pattern[str], str], ...] = tuple(
    (rule, re.compile(pattern, re.IGNORECASE | re.MULTILINE), message)
    for rule, pattern, message in (
        (4, r"\b(FLOAT|REAL)\b", "no FLOAT/REAL: use DECIMAL(p,s)"),
        (4, r"\b(DECIMAL|NUMERIC)\b(?!\s*\(\s*\d+\s*,\s*\d+\s*\))", "DECIMAL needs both p and s"),
        (6, r"\b(STDEVP|VARP|VAR)\s*\(", "only STDEV transpiles"),
        (9, r"\bISNULL\s*\(", "use COALESCE, not ISNULL"),
        (9, r"\bLEN\s*\((?!\s*RTRIM\s*\()", "write LEN(RTRIM(x)), never bare LEN"),
        (
            10,
            r"\bDATE(DIFF|ADD|PART|NAME|_BUCKET|TRUNC)\s*\(\s*(?!(day|dd|d|month|mm|m|year|yy|yyyy|hour|hh|minute|mi|n|second|ss|s)\s*,)",
            "date part must be day, month, year, hour, minute or second",
        ),
        (13, rf"\b({_CLOCK})\b", "no clock functions: pass @run_ts or @run_date in"),
        (14, r"\b(CONVERT|TRY_CONVERT|FORMAT|PARSE|TRY_PARSE)\s*\(", "use CAST/TRY_CAST only"),
        (15, r"\bDATETIME\b(?!2)|\bSMALLDATETIME\b", "use DATETIME2(6), never DATETIME"),
        (15, r"\bBIT\b", "no BIT: produce flags as CASE ... THEN 1 ELSE 0 END"),
        (16, r"\bRANGE\s+BETWEEN\b", "rolling windows use ROWS over a dense grid, never RANGE"),
        (20, r"\bRECURSIVE\b|\bGENERATE_SERIES\s*\(", "use dim.calendar as the date spine"),
        (21, r"\b(OPENJSON|ISJSON|JSON_QUERY)\b", "JSON: scalar JSON_VALUE then TRY_CAST only"),
        (
            22,
            r"^\s*(DECLARE|PRINT|EXEC|EXECUTE|IF|WHILE|BEGIN\s+TRAN\w*|COMMIT|ROLLBACK)\b",
            "transform files hold DML only",
        ),
        (22, r"\bSET\s+@", "no variables: transform files hold DML only"),
        (
            23,
            r"\b(CREATE|ALTER|DROP|TRUNCATE)\s+(TABLE|PROC|PROCEDURE|VIEW|FUNCTION|INDEX|SCHEMA)\b",
            "no DDL in transform files: it does not transpile; it is generated from schema.py",
        ),
        (5, r"\bROUND\s*\(", "round by a final CAST(expr AS DECIMAL(p,s)), not ROUND"),
        (
            25,
            r"\bLIMIT\b|\|\||\bQUALIFY\b|::|\bNULLS\s+(FIRST|LAST)\b|\bILIKE\b",
            "not T-SQL (LIMIT, ||, QUALIFY, ::, NULLS FIRST/LAST, ILIKE)",
        ),
        (22, r"#\w+", "no temp tables: #t becomes a real table on DuckDB"),
        (22, r"\bOPTION\s*\(", "no query hints (OPTION)"),
        (
            22,
            r"\bWITH\s*\(\s*(NOLOCK|HOLDLOCK|TABLOCK\w*|UPDLOCK|ROWLOCK|READPAST|SERIALIZABLE|INDEX)",
            "no table hints: sqlglot drops them silently and Synapse MERGE rejects them",
        ),
        (22, r"^\s*GO\s*$", "one batch per transform file (each becomes a stored procedure)"),
        (22, r"@\w+\s+TABLE\b", "no table variables"),
    )
)


def _pattern_violations(text: str) -> Iterator[Violation]:
    blanked = _blank(text)
    for rule, pattern, message in _PATTERNS:
        for match in pattern.finditer(blanked):
            yield Violation(
                _line(blanked, match.start()), rule, f"{message} ({match.group(0).strip()})"
            )
    for match in _STRING.finditer(text):
        value = match.group(1)
        if re.fullmatch(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}.*|\d{8}", value) and not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", value
        ):
            yield Violation(
                _line(text, match.start()), 12, f"date literals only as 'YYYY-MM-DD' ('{value}')"
            )
        if value.lower().startswith("strict"):
            yield Violation(_line(text, match.start()), 21, "no strict JSON paths")


_INTEGER_TYPES = (exp.DataType.Type.BIGINT, exp.DataType.Type.INT)


def _is_decimal(node: exp.Expression) -> bool:
    """A decimal-typed operand as written: a decimal CAST or a literal with a point."""
    if isinstance(node, exp.Paren):
        return _is_decimal(node.this)
    if isinstance(node, exp.Cast | exp.TryCast):
        return bool(node.to.this == exp.DataType.Type.DECIMAL)
    return isinstance(node, exp.Literal) and not node.is_string and "." in str(node.this)


def _is_integer_cast(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and node.to.this in _INTEGER_TYPES


def _is_cast(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast | exp.TryCast)


def _guarded(divisor: exp.Expression) -> bool:
    """CAST(NULLIF(den, 0) AS BIGINT): the zero test inside the integer cast."""
    inner = divisor.this if _is_integer_cast(divisor) else divisor
    return (
        isinstance(inner, exp.Nullif)
        and isinstance(inner.expression, exp.Literal)
        and inner.expression.this == "0"
    )


def _number_rules(statement: exp.Expr) -> Iterator[tuple[int, str]]:
    for div in statement.find_all(exp.Div, exp.Mod):
        text = div.sql("tsql")[:60]
        if _is_decimal(div.this) or _is_decimal(div.expression):
            yield 26, f"no DECIMAL division: round n / d in BIGINT arithmetic: {text}"
        elif not (_is_integer_cast(div.this) and _is_integer_cast(div.expression)):
            yield 1, f"write CAST(n AS BIGINT) / CAST(NULLIF(d, 0) AS BIGINT): {text}"
        if not _guarded(div.expression):
            yield 2, f"guard the divisor: CAST(NULLIF(d, 0) AS BIGINT): {text}"
    for agg in statement.find_all(exp.Sum, exp.Avg):
        if not _is_cast(agg.this):
            yield 3, f"{agg.key.upper()} over a CAST only: {agg.sql('tsql')[:60]}"


def _text_and_date_rules(statement: exp.Expr) -> Iterator[tuple[int, str]]:
    for add in statement.find_all(exp.Add):
        if any(isinstance(s, exp.Literal) and s.is_string for s in (add.this, add.expression)):
            yield 9, "use CONCAT, never + on strings"
    for date_add in statement.find_all(exp.DateAdd):
        parent = date_add.parent
        if not (isinstance(parent, exp.Cast) and parent.to.this == exp.DataType.Type.DATE):
            yield 11, "wrap DATEADD in CAST(... AS DATE)"
    for param in statement.find_all(exp.Parameter):
        if re.search(r"(date|_ts)$", param.name) and not _is_cast(param.parent):  # type: ignore[arg-type]
            yield 12, f"write CAST(@{param.name} AS DATE) (or DATETIME2(6))"


# Names that are machine-written ASCII (raw-zone paths like date=.../part-00001.ndjson): every
# collation orders them alike, so they may break ties. Rule 8 is about business names.
_MACHINE_NAMES = frozenset({"src_file_name"})


def _ordering_and_key_rules(statement: exp.Expr) -> Iterator[tuple[int, str]]:
    for window in statement.find_all(exp.Window):
        spec = window.args.get("spec")
        if spec is not None and str(spec.args.get("kind", "")).upper() == "RANGE":
            yield 16, "rolling windows use ROWS, never RANGE"
    for order in statement.find_all(exp.Order):
        for column in order.find_all(exp.Column):
            if "name" in column.name.lower() and column.name.lower() not in _MACHINE_NAMES:
                yield 8, f"never order or tie-break on names ({column.name})"
    key_holders: list[exp.Expression] = [
        *statement.find_all(exp.Join),
        *statement.find_all(exp.Group),
        *statement.find_all(exp.Window),
        *statement.find_all(exp.Merge),
    ]
    for holder in key_holders:
        keys = holder.args.get("on") or holder.args.get("partition_by") or holder
        for node in keys if isinstance(keys, list) else [keys]:
            for column in node.find_all(exp.Column):
                if column.name.lower().endswith("_raw"):
                    yield 7, f"join, group and merge on canonical keys, not {column.name}"


def _ast_rules(statement: exp.Expr) -> Iterator[tuple[int, str]]:
    yield from _number_rules(statement)
    yield from _text_and_date_rules(statement)
    yield from _ordering_and_key_rules(statement)
    if isinstance(statement, exp.Update) and statement.args.get("from_") is not None:
        yield 19, "never UPDATE ... FROM a join: use MERGE"
    if isinstance(statement, exp.Merge):
        yield from _merge_rules(statement)
    elif statement.find(exp.Merge) is not None:
        yield 18, "MERGE stands alone: no CTE before it (Synapse allows only SELECT after a CTE)"


def _merge_rules(merge: exp.Merge) -> Iterator[tuple[int, str]]:
    using = merge.args.get("using")
    if not isinstance(using, exp.Subquery):
        yield 17, "MERGE USING must be a derived table that deduplicates the source"
    else:
        inner = using.this
        if (
            inner.find(exp.With) is not None
            or isinstance(inner, exp.With)
            or inner.args.get("with_")
        ):
            yield 18, "no CTE inside USING: use derived tables"
        deduplicated = (
            inner.find(exp.RowNumber) is not None
            or inner.find(exp.Group) is not None
            or bool(inner.args.get("distinct"))
        )
        if not deduplicated:
            yield 17, "deduplicate the MERGE source (ROW_NUMBER() ... = 1 or GROUP BY)"
    if merge.args.get("returning") is not None:
        yield 18, "no OUTPUT in MERGE"
    for update in merge.find_all(exp.Update):
        for assignment in update.expressions:
            if (
                isinstance(assignment, exp.EQ)
                and isinstance(assignment.this, exp.Column)
                and assignment.this.table
            ):
                yield 18, f"SET targets unqualified (SET {assignment.this.name} = ...)"


def _statements(text: str) -> list[str]:
    """Split on semicolons outside literals and comments, keeping each statement's text."""
    blanked = _blank(text)
    parts, start = [], 0
    for match in re.finditer(";", blanked):
        parts.append(text[start : match.end()])
        start = match.end()
    parts.append(text[start:])
    return [p for p in parts if _blank(p).strip(" \n\t;")]


def lint_text(text: str) -> list[Violation]:
    """Every contract violation in a transform file's text, sorted by line."""
    violations = list(_pattern_violations(text))
    offset_line = 1
    consumed = 0
    for chunk in _statements(text):
        position = text.find(chunk, consumed)
        consumed = position + len(chunk)
        line = _line(text, position + len(chunk) - len(chunk.lstrip()))
        offset_line = line
        body = chunk.strip()
        if re.match(r"(?is)^\s*(WITH\b.*\bMERGE\b|MERGE\b)", _blank(body)) and not body.endswith(
            ";"
        ):
            violations.append(Violation(offset_line, 18, "end MERGE with ';'"))
        try:
            parsed = sqlglot.parse(body, read="tsql", error_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            violations.append(
                Violation(offset_line, 24, f"does not parse as T-SQL: {str(exc).splitlines()[0]}")
            )
            continue
        for statement in parsed:
            if statement is None:
                continue
            violations.extend(
                Violation(offset_line, rule, msg) for rule, msg in _ast_rules(statement)
            )
            try:
                statement.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
            except SqlglotError as exc:
                violations.append(
                    Violation(offset_line, 24, f"does not transpile: {str(exc).splitlines()[0]}")
                )
    return sorted(set(violations))


def lint_file(path: str | Path) -> list[Violation]:
    return lint_text(Path(path).read_text(encoding="utf-8"))


def transform_files(sql_dir: str | Path) -> list[Path]:
    """The transform files: top-level *.sql in sql/ (generated DDL lives in sql/ddl/)."""
    return sorted(Path(sql_dir).glob("*.sql"))


def view_files(sql_dir: str | Path) -> list[Path]:
    """The views' SELECTs, sql/views/*.sql: linted like transforms, but no procedures."""
    return sorted((Path(sql_dir) / "views").glob("*.sql"))
