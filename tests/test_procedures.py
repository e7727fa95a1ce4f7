"""Stored procedures rendered from the transform files, and their deployment to Azure SQL.

No SQL Server exists offline: deployment is checked against a recording fake pyodbc
connection (the only mock here), the rendered text with sqlfluff's T-SQL parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlfluff

from company_activity.azure import procedures
from company_activity.errors import ConfigError, SqlContractError
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.tsql import split_batches

REAL = procedures.render_all()


def test_every_transform_file_becomes_one_procedure() -> None:
    files = sorted(procedures.SQL_DIR.glob("*.sql"))
    assert files, "sql/ holds the transform files"
    assert [p.source for p in REAL] == files
    assert [p.name for p in REAL] == [f"usp_{f.stem}" for f in files]


@pytest.mark.parametrize("procedure", REAL, ids=lambda p: p.name)
def test_a_procedure_is_the_files_batch_with_typed_parameters(
    procedure: procedures.Procedure,
) -> None:
    text = procedure.create_sql()
    (batch,) = split_batches(procedure.source.read_text(encoding="utf-8"))
    assert batch.rstrip() in text, "the body is the file's batch, unchanged"
    assert f"CREATE OR ALTER PROCEDURE ops.{procedure.name}\n" in text
    for name in procedure.parameters:
        assert f"@{name} {procedures.PARAMETER_TYPES[name]}" in text
    assert "SET XACT_ABORT ON;" in text and "BEGIN TRANSACTION;" in text
    # Concurrent writers take turns: an exclusive, transaction-owned lock on every table the
    # body writes, taken before the body, the same resource names the Python path locks.
    tables = procedures.written_tables(procedure.body)
    assert tables, "every transform writes a table"
    head, _, _ = text.partition(batch.rstrip())
    for table in tables:
        assert f"@Resource = N'company_activity:{table}'" in head
    assert head.count("@LockOwner = 'Transaction'") == len(tables)
    assert "IF @lock_result < 0" in head and "THROW 51001" in head
    assert text.rstrip().endswith("COMMIT TRANSACTION;\nEND;")


@pytest.mark.parametrize("procedure", REAL, ids=lambda p: p.name)
def test_a_rendered_procedure_parses_as_tsql(procedure: procedures.Procedure) -> None:
    sqlfluff.parse(procedure.create_sql(), dialect="tsql")  # raises when it cannot parse


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parameters_come_from_the_names_used_in_declaration_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "t.sql",
        "-- @run_date in a comment is not a parameter\n"
        "DELETE FROM ops.x WHERE d = CAST(@end_date AS DATE) AND r = @run_id\n"
        "    AND n = '@start_date'\n"
        "    AND c = @@ROWCOUNT AND s = CAST(@START_DATE AS DATE)",
    )
    procedure = procedures.render(path)
    assert procedure.parameters == ("start_date", "end_date", "run_id")
    assert procedure.body.endswith(";")


def test_an_undeclared_parameter_is_a_contract_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.sql", "DELETE FROM ops.x WHERE d = @when;")
    with pytest.raises(SqlContractError, match="@when"):
        procedures.render(path)


def test_a_file_of_several_batches_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.sql", "DELETE FROM ops.x;\nGO\nDELETE FROM ops.y;\n")
    with pytest.raises(SqlContractError, match="2 batches"):
        procedures.render(path)


class RecordingConnection:
    """Stands in for pyodbc (no SQL Server offline): records statements and parameters."""

    def __init__(self) -> None:
        self.executed: list[tuple[str, tuple[Any, ...]]] = []
        self.commits = 0
        self.rollbacks = 0

    def cursor(self) -> RecordingConnection:
        return self

    def execute(self, sql: str, *params: Any) -> None:
        self.executed.append((sql, params))

    rowcount = 0
    description = None

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        pass


def test_deploy_creates_or_alters_each_procedure_through_sp_executesql() -> None:
    connection = RecordingConnection()
    wh = AzureSqlWarehouse("Driver=x", connect=lambda *_: connection)
    deployed = procedures.deploy_procedures(wh)
    assert deployed == [p.qualified_name for p in REAL]
    schema_sql, _ = connection.executed[0]
    assert "CREATE SCHEMA ops" in schema_sql
    calls = connection.executed[1:]
    assert [sql for sql, _ in calls] == ["EXEC sp_executesql ?"] * len(REAL)
    # The procedure text travels as a bound value, so its own @parameters stay intact.
    assert [params for _, params in calls] == [(p.create_sql(),) for p in REAL]
    assert (connection.commits, connection.rollbacks) == (1, 0)


def test_deploy_refuses_the_local_engine(tmp_path: Path) -> None:
    with (
        DuckDBWarehouse(tmp_path / "w.duckdb") as wh,
        pytest.raises(ConfigError, match="Azure SQL"),
    ):
        procedures.deploy_procedures(wh)


def test_written_tables_skip_comments_literals_and_temp_tables() -> None:
    body = (
        "-- MERGE INTO dim.not_this\n"
        "DELETE FROM #scratch;\n"
        "INSERT INTO analytics.t (a) SELECT 'UPDATE dim.nor_this' FROM stg.s;\n"
        "UPDATE dim.companies SET a = 1;\n"
        "MERGE INTO analytics.t AS tgt USING stg.s AS src ON 1 = 0\n"
        "WHEN NOT MATCHED THEN INSERT (a) VALUES (1);"
    )
    assert procedures.written_tables(body) == ("analytics.t", "dim.companies")
