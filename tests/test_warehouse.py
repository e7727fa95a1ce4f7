"""The warehouse runner on the embedded engine, and the Azure SQL engine's statements."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity.errors import SqlContractError, TerminalError
from company_activity.warehouse.azuresql import AzureSqlWarehouse, access_token_attrs
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.tsql import split_batches, to_qmark


def test_go_splits_batches_only_on_lines_of_their_own() -> None:
    script = "SELECT 'GO' AS word\nGO\nSELECT 2 AS category -- GO here is text\n  go  \n\nGO\n"
    assert split_batches(script) == [
        "SELECT 'GO' AS word",
        "SELECT 2 AS category -- GO here is text",
    ]


def test_hostile_parameter_values_are_data(warehouse: DuckDBWarehouse) -> None:
    hostile = "x'); DROP TABLE dim.companies; --"
    warehouse.execute(
        "INSERT INTO dim.companies (company_id, company_name, first_seen_date, run_id, created_at,"
        " updated_at) VALUES (@id, @name, CAST(@day AS DATE), @run_id, CAST(@ts AS DATETIME2(6)),"
        " CAST(@ts AS DATETIME2(6)))",
        {
            "id": "c1",
            "name": hostile,
            "day": date(2025, 1, 1),
            "run_id": "r",
            "ts": datetime(2025, 1, 1),
        },
    )
    assert (
        warehouse.scalar(
            "SELECT company_name FROM dim.companies WHERE company_id = @id", {"id": "c1"}
        )
        == hostile
    )
    assert warehouse.table_exists("dim.companies")


def test_a_script_applies_fully_or_not_at_all(warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    script = tmp_path / "step.sql"
    script.write_text(
        "INSERT INTO dim.calendar (calendar_date) VALUES (CAST('2150-01-01' AS DATE));\nGO\n"
        "INSERT INTO dim.calendar (calendar_date) VALUES (CAST('2150-01-01' AS DATE));\n"
    )
    with pytest.raises(TerminalError):
        warehouse.run_file(script)
    assert (
        warehouse.scalar("SELECT COUNT(*) FROM dim.calendar WHERE calendar_date = '2150-01-01'")
        == 0
    )


def test_transaction_block_rolls_back_everything(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(RuntimeError), warehouse.transaction():
        warehouse.insert_rows("dim.calendar", ["calendar_date"], [(date(2150, 1, 2),)])
        raise RuntimeError("fail mid-step")
    assert (
        warehouse.scalar("SELECT COUNT(*) FROM dim.calendar WHERE calendar_date = '2150-01-02'")
        == 0
    )


def test_unbound_parameter_is_a_clear_error(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(TerminalError, match="@missing"):
        warehouse.query("SELECT @missing AS x")


def test_untranspilable_tsql_is_refused(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(SqlContractError, match="does not transpile"):
        warehouse.query("SELECT SOUNDEX('x') AS s")


def test_rows_affected_are_counted(warehouse: DuckDBWarehouse) -> None:
    warehouse.insert_rows(
        "dim.calendar", ["calendar_date"], [(date(2150, 1, d),) for d in range(1, 6)]
    )
    deleted = warehouse.execute("DELETE FROM dim.calendar WHERE calendar_date >= '2150-01-01'")
    assert deleted == 5


def test_bulk_insert_batches(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "b.duckdb")
    wh.batch_size = 7
    wh.execute_native("CREATE TABLE t (a INTEGER, b VARCHAR)")
    assert wh.insert_rows("t", ["a", "b"], ((i, f"v{i}") for i in range(50))) == 50
    assert wh.scalar("SELECT COUNT(*) FROM t") == 50
    wh.close()


def test_qmark_rewrite_keeps_literals_and_system_functions() -> None:
    sql, names = to_qmark(
        "SELECT @a, '@b', [@c], @@ROWCOUNT -- @d\n, @a FROM t WHERE x = @run_date"
    )
    assert sql == "SELECT ?, '@b', [@c], @@ROWCOUNT -- @d\n, ? FROM t WHERE x = ?"
    assert names == ["a", "a", "run_date"]


class RecordingConnection:
    """Stands in for a pyodbc connection: no SQL Server exists offline."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.commits = 0
        self.rollbacks = 0

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        pass


class RecordingCursor:
    def __init__(self, con: RecordingConnection) -> None:
        self.con = con
        self.fast_executemany = False
        self.description = [("x",)]
        self.rowcount = 1

    def setinputsizes(self, sizes: list[Any]) -> None:
        self.con.calls.append(("setinputsizes", sizes))

    def execute(self, sql: str, *params: Any) -> None:
        self.con.calls.append(("execute", (sql, params)))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.con.calls.append(("executemany", (sql, len(rows), self.fast_executemany)))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [(1,)]


def test_azure_sql_binds_parameters_positionally_and_splits_batches() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    wh = AzureSqlWarehouse("Driver=x", connect=lambda conn_str, token: con)
    wh.execute(
        "DELETE FROM t WHERE d = CAST(@run_date AS DATE)\nGO\n"
        "INSERT INTO t VALUES (@run_id, @run_date)",
        {"run_date": date(2025, 1, 2), "run_id": "r1", "unused": 1},
    )
    assert con.calls == [
        ("execute", ("DELETE FROM t WHERE d = CAST(? AS DATE)", (date(2025, 1, 2),))),
        # run_id is a VARCHAR(64) column: declared so, not as pyodbc's default NVARCHAR.
        ("setinputsizes", [(12, 64, 0), None]),
        ("execute", ("INSERT INTO t VALUES (?, ?)", ("r1", date(2025, 1, 2)))),
    ]
    assert con.commits == 1 and con.rollbacks == 0


def test_azure_sql_bulk_insert_uses_fast_executemany_in_batches() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    wh = AzureSqlWarehouse("Driver=x", connect=lambda conn_str, token: con)
    wh.batch_size = 4
    assert wh.insert_rows("stg.t", ["a", "b"], [(i, i) for i in range(10)]) == 10
    assert con.calls == [
        ("executemany", ("INSERT INTO stg.t (a, b) VALUES (?, ?)", 4, True)),
        ("executemany", ("INSERT INTO stg.t (a, b) VALUES (?, ?)", 4, True)),
        ("executemany", ("INSERT INTO stg.t (a, b) VALUES (?, ?)", 2, True)),
    ]
    assert con.commits == 1


def test_access_token_is_packed_for_the_odbc_driver() -> None:
    attrs = access_token_attrs("tok")
    assert attrs == {1256: b"\x06\x00\x00\x00t\x00o\x00k\x00"}


@pytest.mark.parametrize(
    ("state", "message", "transient"),
    [
        (
            "HY000",
            "[Microsoft][ODBC Driver 18][SQL Server]Lock request time out period exceeded. (1222)",
            True,
        ),
        ("40001", "Transaction was deadlocked on lock resources (1205)", True),
        ("42000", "The service is currently busy. (40501)", True),
        ("08S01", "Communication link failure", True),
        ("42S02", "Invalid object name 'dim.nope'. (208)", False),
    ],
)
def test_azure_sql_errors_are_classified_for_retry(
    state: str, message: str, transient: bool
) -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    from company_activity.errors import TransientError

    class Failing(RecordingConnection):
        def cursor(self) -> RecordingCursor:
            cursor = RecordingCursor(self)

            def fail(sql: str, *params: Any) -> None:
                raise RuntimeError(state, message)

            cursor.execute = fail  # type: ignore[method-assign]
            return cursor

    wh = AzureSqlWarehouse("Driver=x", connect=lambda conn_str, token: Failing())
    with pytest.raises(TransientError if transient else TerminalError) as caught:
        wh.execute("SELECT 1")
    assert isinstance(caught.value, TransientError) is transient


def test_duckdb_checkpoints_rarely_during_backfills(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "c.duckdb")
    try:
        assert wh.scalar("SELECT current_setting('checkpoint_threshold')") == "244.1 MiB"
    finally:
        wh.close()
