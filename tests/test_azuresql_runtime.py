"""Azure SQL at run time: lost sessions, application locks, parameter types, the bulk path.

No SQL Server exists offline, so every test here drives AzureSqlWarehouse through the
recording fake pyodbc connection of tests/test_warehouse.py (extended to die on demand) and
asserts the statements sent, the reconnects and the outcome. The runner is the real one,
with its run log on a real DuckDB file. The live suite (tests/test_mssql_live.py) runs the
same code against SQL Server 2022 in CI.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from company_activity.errors import TerminalError, TransientError
from company_activity.model.rollback import rollback
from company_activity.pipeline import names as steps
from company_activity.pipeline.runner import PipelineRunner, StepOutcome
from company_activity.warehouse.azuresql import LOCK_TIMEOUT_MS, AzureSqlWarehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.schema import PRODUCT_USAGE
from company_activity.warehouse.sqlserver_params import SQL_VARCHAR, SQL_WVARCHAR
from tests.test_warehouse import RecordingConnection, RecordingCursor

DAY = date(2025, 3, 3)
AZURE_SQL = 5  # SERVERPROPERTY('EngineEdition') of Azure SQL Database: no detection query


class FakeOdbcError(Exception):
    """Shaped like pyodbc.Error: args = (SQLSTATE, driver message)."""


LINK_FAILURE = FakeOdbcError(
    "08S01", "[Microsoft][ODBC Driver 18 for SQL Server]Communication link failure (10054)"
)
DEADLOCK = FakeOdbcError("40001", "Transaction (Process ID 61) was deadlocked (1205)")
NO_TABLE = FakeOdbcError("42S02", "Invalid object name 'dim.nope'. (208)")
NOT_GRANTED = FakeOdbcError("42000", "lock on company_activity:dim.companies not granted (51001)")


class DyingConnection(RecordingConnection):
    """A recording connection that raises the queued error at the named stage, once each."""

    def __init__(self, server: Server) -> None:
        super().__init__()
        self.server = server
        self.closed = False

    def _maybe_die(self, stage: str) -> None:
        queue = self.server.deaths.get(stage)
        if queue:
            raise queue.pop(0)

    def cursor(self) -> RecordingCursor:
        cursor = RecordingCursor(self)
        record = cursor.execute

        def execute(sql: str, *params: Any) -> None:
            record(sql, *params)
            if not sql.startswith("EXEC sp_executesql"):  # the locks always succeed here
                self._maybe_die("execute")

        cursor.execute = execute  # type: ignore[method-assign]
        return cursor

    def commit(self) -> None:
        self._maybe_die("commit")
        super().commit()

    def rollback(self) -> None:
        self._maybe_die("rollback")
        super().rollback()

    def close(self) -> None:
        self.closed = True


class Server:
    """Hands out connections (counting them) and the failures queued for them."""

    def __init__(self) -> None:
        self.connections: list[DyingConnection] = []
        self.deaths: dict[str, list[Exception]] = {}

    def connect(self, conn_str: str, use_access_token: bool) -> DyingConnection:
        connection = DyingConnection(self)
        self.connections.append(connection)
        return connection


def _statements(connection: RecordingConnection) -> list[str]:
    return [c[1][0] for c in connection.calls if c[0] == "execute"]


def _runner(log_wh: DuckDBWarehouse, azure: AzureSqlWarehouse) -> PipelineRunner:
    """The real runner (run log on DuckDB) whose merge_analytics step writes to Azure SQL."""

    def merge_step(day: date) -> StepOutcome:
        with azure.transaction("analytics.company_activity_metrics"):
            rows = azure.execute("UPDATE analytics.t SET run_id = @run_id", {"run_id": "r1"})
        return StepOutcome(rows=rows)

    run_steps = {
        name: (lambda day: StepOutcome(rows=0)) for name in steps.STEP_NAMES if name != steps.NOTIFY
    }
    run_steps[steps.MERGE_ANALYTICS] = merge_step
    return PipelineRunner(
        log_wh, "run-1", run_steps, lambda m: True, lambda: datetime(2025, 3, 4), 3, lambda s: None
    )


def _attempts(log_wh: DuckDBWarehouse) -> int:
    return int(
        log_wh.scalar(
            "SELECT attempts FROM ops.step_runs WHERE step_name = @s", {"s": "merge_analytics"}
        )
    )


@pytest.mark.parametrize(
    ("deaths", "first_error"),
    [
        # The link drops in a statement; the rollback on the dead session fails as well.
        ({"execute": [LINK_FAILURE], "rollback": [LINK_FAILURE]}, "Communication link"),
        # The link drops in COMMIT (its outcome unknown: the step is idempotent).
        ({"commit": [LINK_FAILURE]}, "COMMIT failed"),
        # A deadlock in a statement, and the link drops in the ROLLBACK that follows.
        ({"execute": [DEADLOCK], "rollback": [LINK_FAILURE]}, "deadlocked"),
    ],
    ids=["dies-in-execute", "dies-in-commit", "dies-in-rollback"],
)
def test_a_lost_session_reconnects_and_the_step_is_retried(
    warehouse: DuckDBWarehouse,
    deaths: dict[str, list[Exception]],
    first_error: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    server = Server()
    azure = AzureSqlWarehouse("Driver=x", connect=server.connect, edition=AZURE_SQL)
    server.deaths = deaths
    result = _runner(warehouse, azure).run([DAY], "run test")
    assert result.ok, result.dates[0].error
    assert _attempts(warehouse) == 2
    assert first_error in caplog.text  # the retry log names the first attempt's error
    first, second = server.connections
    assert first.closed and azure.reconnects == 1
    assert first.commits == 0
    # The retry ran the whole step, lock first, on the new session, and committed it.
    assert _statements(second)[0].startswith("EXEC sp_executesql")
    assert _statements(second)[1] == "UPDATE analytics.t SET run_id = ?"
    assert second.commits == 1


def test_a_session_that_keeps_dropping_fails_transient_after_the_usual_attempts(
    warehouse: DuckDBWarehouse,
) -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    server = Server()
    azure = AzureSqlWarehouse("Driver=x", connect=server.connect, edition=AZURE_SQL)
    server.deaths = {"execute": [LINK_FAILURE] * 3, "rollback": [LINK_FAILURE] * 3}
    result = _runner(warehouse, azure).run([DAY], "run test")
    failed = result.failed
    assert failed is not None and failed.failing_step == steps.MERGE_ANALYTICS
    assert failed.transient  # exit 75: retry later
    assert failed.error is not None and "Communication link failure" in failed.error
    assert "ROLLBACK" not in failed.error  # the statement's error, not the rollback's
    assert _attempts(warehouse) == 3
    assert len(server.connections) == 3


def test_a_terminal_error_stays_terminal_when_the_rollback_also_fails() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    server = Server()
    azure = AzureSqlWarehouse("Driver=x", connect=server.connect, edition=AZURE_SQL)
    server.deaths = {"execute": [NO_TABLE], "rollback": [LINK_FAILURE]}
    with pytest.raises(TerminalError, match=r"Invalid object name 'dim\.nope'"):
        azure.execute("DELETE FROM dim.nope")
    # The session went with the rollback: the next statement opens a new one.
    assert azure.scalar("SELECT 1") == 1
    assert len(server.connections) == 2 and server.connections[0].closed


def test_no_reconnect_inside_the_transaction_that_lost_its_session() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    server = Server()
    azure = AzureSqlWarehouse("Driver=x", connect=server.connect, edition=AZURE_SQL)
    server.deaths = {"execute": [LINK_FAILURE]}
    with pytest.raises(TransientError, match="lost inside this transaction"), azure.transaction():
        with pytest.raises(TransientError):
            azure.execute("DELETE FROM stg.t")
        azure.execute("INSERT INTO stg.t VALUES (1)")  # a caller that carried on
    assert len(server.connections) == 1  # nothing ran on a new session mid-transaction
    assert azure.scalar("SELECT 1") == 1  # after it, a new session
    assert len(server.connections) == 2


def test_connection_errors_are_transient_and_others_by_number() -> None:
    from company_activity.warehouse.sqlserver_errors import classify, is_connection_error

    for exc in (
        LINK_FAILURE,
        FakeOdbcError("08001", "TCP Provider: Timeout error [258]."),
        FakeOdbcError("42000", "Database 'x' on server 'y' is not currently available. (40613)"),
        FakeOdbcError("HY000", "The service has encountered an error (40197)"),
        FakeOdbcError("HY000", "Cannot open database requested by the login (4060)"),
    ):
        assert is_connection_error(exc), exc
        assert isinstance(classify(exc, "x"), TransientError)
    assert not is_connection_error(DEADLOCK)
    assert isinstance(classify(DEADLOCK, "x"), TransientError)
    assert isinstance(classify(NOT_GRANTED, "x"), TransientError)
    assert isinstance(classify(NO_TABLE, "x"), TerminalError)


# Application locks ---------------------------------------------------------------------------


def _locks(connection: RecordingConnection) -> list[tuple[Any, ...]]:
    return [c[1][1] for c in connection.calls if c[0] == "execute" and "sp_executesql" in c[1][0]]


def test_transactions_lock_their_targets_in_name_order_once() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    azure = AzureSqlWarehouse("Driver=x", connect=lambda *_: con, edition=AZURE_SQL)
    with azure.transaction("dim.companies", "analytics.company_activity_metrics"):  # noqa: SIM117
        with azure.transaction("dim.companies", "stg.product_usage"):  # one new lock only
            azure.execute("DELETE FROM stg.product_usage")
    sent = _locks(con)
    assert [(p[1], p[2]) for p in sent] == [
        ("company_activity:analytics.company_activity_metrics", LOCK_TIMEOUT_MS),
        ("company_activity:dim.companies", LOCK_TIMEOUT_MS),
        ("company_activity:stg.product_usage", LOCK_TIMEOUT_MS),
    ]
    lock_sql, lock_tsql = con.calls[0][1][0], sent[0][0]
    assert lock_sql == (
        "EXEC sp_executesql ?, N'@lock_resource NVARCHAR(255), @lock_timeout_ms INT', ?, ?"
    )
    for part in (
        "EXEC @lock_result = sp_getapplock",
        "@Resource = @lock_resource",
        "@LockMode = 'Exclusive'",
        "@LockOwner = 'Transaction'",
        "@LockTimeout = @lock_timeout_ms",
        "IF @lock_result < 0",  # sp_getapplock: negative means not granted
        "THROW 51001, @lock_message, 1;",
    ):
        assert part in lock_tsql, part
    assert con.commits == 1
    # Transaction-owned: the next transaction takes the lock again.
    with azure.transaction("dim.companies"):
        pass
    assert len(_locks(con)) == 4


def test_a_lock_not_granted_in_time_is_transient_and_rolls_back() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    azure = AzureSqlWarehouse(
        "Driver=x", connect=lambda *_: con, lock_timeout_ms=5, edition=AZURE_SQL
    )

    def refuse(sql: str, *params: Any) -> None:
        con.calls.append(("execute", (sql, params)))
        raise NOT_GRANTED

    cursor = RecordingCursor(con)
    cursor.execute = refuse  # type: ignore[method-assign]
    con.cursor = lambda: cursor  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="not granted"), azure.transaction("dim.companies"):
        pytest.fail("the block must not run without its lock")
    assert _locks(con)[0][2] == 5
    assert (con.commits, con.rollbacks) == (0, 1)


def test_rollback_of_a_date_locks_the_model_and_staging() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    azure = AzureSqlWarehouse("Driver=x", connect=lambda *_: con, edition=AZURE_SQL)
    rollback(azure, DAY, "run-1", datetime(2025, 3, 4), staging=True)
    assert [p[1] for p in _locks(con)] == [
        "company_activity:analytics.company_activity_metrics",
        "company_activity:dim.companies",
        "company_activity:stg.crm_companies",
        "company_activity:stg.product_usage",
    ]
    first_write = next(i for i, c in enumerate(con.calls) if "DELETE" in str(c[1][0]))
    assert all("sp_executesql" in str(c[1][0]) for c in con.calls[:first_write])


# Parameter types -----------------------------------------------------------------------------


def _sizes_sent(con: RecordingConnection) -> list[Any]:
    return [c[1] for c in con.calls if c[0] == "setinputsizes"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # company_id is VARCHAR(100): ASCII goes as VARCHAR, so an index seek stays a seek.
        ({"company_id": "c000001"}, [(SQL_VARCHAR, 100, 0)]),
        # Other characters go as NVARCHAR: a VARCHAR parameter takes the default code page.
        ({"company_id": "компания"}, [(SQL_WVARCHAR, 100, 0)]),
        # company_name is NVARCHAR(400).
        ({"company_name": "Acme"}, [(SQL_WVARCHAR, 400, 0)]),
        # Never shorter than the value: it fails to match instead of failing to bind.
        ({"run_id": "r" * 70}, [(SQL_VARCHAR, 70, 0)]),
        # Names that are no declared column, and non-text values, keep pyodbc's binding.
        ({"name": "companies"}, None),
        ({"company_id": 5}, None),
    ],
)
def test_string_parameters_are_sent_with_their_columns_type(
    params: dict[str, Any], expected: list[Any] | None
) -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    azure = AzureSqlWarehouse("Driver=x", connect=lambda *_: con, edition=AZURE_SQL)
    (name,) = params
    azure.query(f"SELECT 1 FROM t WHERE x = @{name}", params)
    assert _sizes_sent(con) == ([expected] if expected else [])


def test_bulk_rows_declare_text_and_max_columns_in_bounded_batches() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    azure = AzureSqlWarehouse("Driver=x", connect=lambda *_: con, edition=AZURE_SQL)
    azure.batch_size = 4
    columns = PRODUCT_USAGE.column_names
    rows = [tuple(None for _ in columns) for _ in range(10)]
    assert azure.insert_rows(PRODUCT_USAGE.name, columns, rows) == 10
    batches = [c[1] for c in con.calls if c[0] == "executemany"]
    assert [b[1] for b in batches] == [4, 4, 2] and all(b[2] for b in batches)
    sizes = _sizes_sent(con)
    assert len(sizes) == 3 and sizes[0] == sizes[1] == sizes[2]
    by_column = dict(zip(columns, sizes[0], strict=True))
    assert by_column["raw_json"] == (SQL_WVARCHAR, 0, 0)  # NVARCHAR(MAX), as pyodbc documents
    assert by_column["company_id"] == (SQL_WVARCHAR, 100, 0)
    assert by_column["company_id_raw"] == (SQL_WVARCHAR, 200, 0)
    assert by_column["file_date"] is None and by_column["loaded_at"] is None


def test_the_engine_edition_is_asked_once_and_synapse_takes_no_applock() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""
    con = RecordingConnection()
    azure = AzureSqlWarehouse("Driver=x", connect=lambda *_: con)
    with azure.transaction("dim.companies"):
        pass
    with azure.transaction("dim.companies"):
        pass
    asked = [c for c in con.calls if c[0] == "execute" and "EngineEdition" in c[1][0]]
    assert len(asked) == 1 and len(_locks(con)) == 2  # the fake answers 1: SQL Server
    synapse_con = RecordingConnection()
    synapse = AzureSqlWarehouse("Driver=x", connect=lambda *_: synapse_con, edition=6)
    with synapse.transaction("dim.companies"):
        synapse.execute("DELETE FROM dim.companies")
    assert synapse.is_synapse and _locks(synapse_con) == []


def test_ddl_for_dedicated_pools_runs_outside_any_transaction() -> None:
    """A recording fake stands in for pyodbc: no SQL Server exists offline."""

    class Autocommit(RecordingConnection):
        def __init__(self) -> None:
            super().__init__()
            self.modes: list[bool] = []
            self._autocommit = False

        @property
        def autocommit(self) -> bool:
            return self._autocommit

        @autocommit.setter
        def autocommit(self, value: bool) -> None:
            self.modes.append(value)
            self._autocommit = value

    con = Autocommit()
    azure = AzureSqlWarehouse("Driver=x", connect=lambda *_: con, edition=6)
    azure.run_autocommit("CREATE TABLE t (a INT)")
    assert con.modes == [True, False] and con.commits == 0
    with pytest.raises(TerminalError, match="inside a transaction"), azure.transaction():
        azure.run_autocommit("CREATE TABLE u (a INT)")
