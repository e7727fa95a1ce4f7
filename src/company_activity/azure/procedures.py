"""Stored procedures for Azure SQL, rendered from the transform files in sql/.

Data Factory runs the merges as SqlServerStoredProcedure activities. Each procedure is the
transform file's single DML batch, unchanged, wrapped in one transaction, with a typed
parameter for every @name the file uses. The files stay the one source: the local runner
runs them through the warehouse runner, Azure SQL runs the procedures rendered from them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from company_activity.errors import ConfigError, SqlContractError
from company_activity.warehouse.azuresql import (
    APPLOCK_DECLARE,
    LOCK_PREFIX,
    LOCK_TIMEOUT_MS,
    applock_tsql,
)
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.sql_files import SQL_DIR
from company_activity.warehouse.sqllint import transform_files
from company_activity.warehouse.tsql import split_batches, to_qmark

log = logging.getLogger(__name__)

PROCEDURE_SCHEMA = "ops"
PROCEDURE_PREFIX = "usp_"

# The only parameters a transform file may use, with the types Azure SQL declares for them.
PARAMETER_TYPES: dict[str, str] = {
    "run_date": "DATE",
    "start_date": "DATE",
    "end_date": "DATE",
    "run_ts": "DATETIME2(6)",
    "run_id": "VARCHAR(64)",
}
# Declaration order in the procedure signature (and in ADF's parameter list).
_ORDER = tuple(PARAMETER_TYPES)

# The tables a statement writes: MERGE INTO / INSERT INTO / UPDATE / DELETE FROM, not #temp.
_WRITTEN = re.compile(
    r"\b(?:MERGE\s+INTO|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([A-Za-z_]\w*\.[A-Za-z_]\w*)",
    re.IGNORECASE,
)


def written_tables(body: str) -> tuple[str, ...]:
    """The schema-qualified tables a transform body writes, sorted (the lock order)."""
    return tuple(sorted({m.group(1).lower() for m in _WRITTEN.finditer(_code_only(body))}))


def _code_only(sql: str) -> str:
    """The SQL without comments and string literals (their words are not statements)."""
    return re.sub(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", " ", sql, flags=re.DOTALL)


@dataclass(frozen=True)
class Procedure:
    """One stored procedure rendered from one transform file."""

    source: Path
    name: str
    parameters: tuple[str, ...]
    body: str

    @property
    def qualified_name(self) -> str:
        return f"{PROCEDURE_SCHEMA}.{self.name}"

    def create_sql(self) -> str:
        """`CREATE OR ALTER PROCEDURE` text: the batch Azure SQL runs to deploy it.

        Inside its transaction the procedure first takes the same transaction-owned
        application lock on each table it writes as the package's Python transactions do
        (AzureSqlWarehouse), so a merge from Data Factory and one from the CLI take turns; a
        lock not granted within LOCK_TIMEOUT_MS fails the procedure (error 51001) and Data
        Factory's retry policy runs it again.
        """
        signature = ",\n".join(f"    @{p} {PARAMETER_TYPES[p]}" for p in self.parameters)
        tables = written_tables(self.body)
        locks = "".join(
            _indent(text) + "\n"
            for text in (
                *((APPLOCK_DECLARE,) if tables else ()),
                *(applock_tsql(f"N'{LOCK_PREFIX}{t}'", str(LOCK_TIMEOUT_MS)) for t in tables),
            )
        )
        return (
            f"-- Generated from sql/{self.source.name} by company_activity.azure.procedures;"
            " do not edit.\n"
            f"CREATE OR ALTER PROCEDURE {self.qualified_name}\n"
            f"{signature}\n"
            "AS\n"
            "BEGIN\n"
            "    SET NOCOUNT ON;\n"
            # XACT_ABORT rolls the whole transaction back on any error, as the local runner does.
            "    SET XACT_ABORT ON;\n"
            "    BEGIN TRANSACTION;\n"
            f"{locks}"
            "\n"
            # The body is not re-indented: that would change any multi-line string literal.
            f"{self.body}\n"
            "\n"
            "    COMMIT TRANSACTION;\n"
            "END;\n"
        )


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def procedure_name(path: Path) -> str:
    """ops.usp_<file stem>: sql/merge_dimension.sql -> usp_merge_dimension."""
    return f"{PROCEDURE_PREFIX}{path.stem}"


def parameters_used(sql: str) -> tuple[str, ...]:
    """The @names a batch uses, in declaration order; unknown names are a contract error."""
    _, names = to_qmark(sql)
    used = {n.lower() for n in names}
    unknown = sorted(used - set(PARAMETER_TYPES))
    if unknown:
        raise SqlContractError(
            f"parameter(s) {', '.join('@' + n for n in unknown)} have no declared type; a "
            f"transform file may use only {', '.join('@' + n for n in _ORDER)}."
        )
    return tuple(p for p in _ORDER if p in used)


def render(path: Path) -> Procedure:
    """Render one transform file as a procedure; it must hold exactly one batch."""
    text = path.read_text(encoding="utf-8")
    batches = split_batches(text)
    if len(batches) != 1:
        raise SqlContractError(
            f"{path} holds {len(batches)} batches; a transform file must be one batch of DML "
            "(no GO lines) to become a stored procedure."
        )
    body = batches[0].rstrip()
    if not body.endswith(";"):
        body += ";"
    return Procedure(path, procedure_name(path), parameters_used(body), body)


def render_all(sql_dir: str | Path = SQL_DIR) -> list[Procedure]:
    """Every transform file in sql_dir (top level, *.sql), rendered, sorted by file name."""
    return [render(path) for path in transform_files(sql_dir)]


# Deploying through sp_executesql keeps the procedure text a bound value: the Azure SQL
# engine rewrites every @name in a statement it runs as a parameter marker, which would
# otherwise hit the procedure's own parameters.
_DEPLOY = "EXEC sp_executesql @procedure_sql"


def deploy_procedures(wh: Warehouse, sql_dir: str | Path = SQL_DIR) -> list[str]:
    """Create or alter one procedure per transform file in Azure SQL; return their names."""
    if wh.engine != "azuresql":
        raise ConfigError(
            f"stored procedures are deployed to Azure SQL only (this warehouse is {wh.engine}); "
            "the local engine runs the sql/ files directly."
        )
    procedures = render_all(sql_dir)
    with wh.transaction():
        wh.execute_native(
            f"IF SCHEMA_ID('{PROCEDURE_SCHEMA}') IS NULL EXEC ('CREATE SCHEMA {PROCEDURE_SCHEMA}');"
        )
        for procedure in procedures:
            wh.execute(_DEPLOY, {"procedure_sql": procedure.create_sql()})
            log.info("deployed stored procedure %s", procedure.qualified_name)
    return [p.qualified_name for p in procedures]
