"""`init-db` on a Synapse dedicated SQL pool (azure/synapse_deploy.py).

No dedicated pool exists offline: the statements, their order and whether each ran inside a
transaction are checked through a scripted fake pyodbc connection (the test says so). The
calendar fill is T-SQL that runs on the local engine as well, so it is checked on DuckDB.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from company_activity.azure import procedures, synapse_deploy
from company_activity.azure.synapse import full_script
from company_activity.errors import ConfigError
from company_activity.warehouse.azuresql import SYNAPSE_EDITION, AzureSqlWarehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import CALENDAR_END, CALENDAR_START, MIGRATIONS
from company_activity.warehouse.tsql import split_batches

APPLIED_AT = datetime(2025, 3, 4, 2, 0)


class ScriptedPool:
    """A fake dedicated-pool connection: records (sql, params, autocommit), answers a few
    catalogue queries. Stands in for pyodbc: no Synapse exists offline."""

    def __init__(self, rcsi: bool = True, daily_is_table: bool = False) -> None:
        self.autocommit = False
        self.sent: list[tuple[str, tuple[Any, ...], bool]] = []
        self.commits = 0
        self.rollbacks = 0
        self.rcsi = rcsi
        self.daily_is_table = daily_is_table
        self._rows: list[tuple[Any, ...]] = []
        self.description: list[tuple[str]] | None = None
        self.rowcount = 0

    def cursor(self) -> ScriptedPool:
        return self

    def setinputsizes(self, sizes: list[Any]) -> None:
        pass

    def execute(self, sql: str, *params: Any) -> None:
        self.sent.append((sql, params, self.autocommit))
        self._rows = []
        if "is_read_committed_snapshot_on" in sql:
            self._rows = [(self.rcsi,)]
        elif "information_schema.tables" in sql:
            asks_daily = "company_activity_daily" in params
            self._rows = [(0 if asks_daily and not self.daily_is_table else 1,)]
        elif "FROM ops.schema_migrations" in sql:
            self._rows = [(1,)]  # version 1 recorded already: only later ones are added
        self.description = [("value",)]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        pass


def _pool(connection: ScriptedPool) -> AzureSqlWarehouse:
    return AzureSqlWarehouse("Driver=x", connect=lambda *_: connection, edition=SYNAPSE_EDITION)


def test_init_runs_the_ddl_outside_transactions_then_calendar_versions_and_procedures() -> None:
    """A scripted fake stands in for pyodbc: no Synapse exists offline."""
    connection = ScriptedPool()
    done = synapse_deploy.init_synapse(_pool(connection), APPLIED_AT)
    sent = connection.sent
    ddl = split_batches(full_script())
    fill_at = next(
        i for i, s in enumerate(sent) if s[0].lstrip().startswith("INSERT INTO dim.calendar")
    )
    ddl_sent = [s for s in sent[:fill_at] if s[0] in ddl]
    assert [s[0] for s in ddl_sent] == ddl, "every DDL batch, in order, each on its own"
    assert all(autocommit for _, _, autocommit in ddl_sent), "DDL never in a user transaction"
    fill = sent[fill_at]
    assert fill[2] is False and fill[1] == (CALENDAR_START, CALENDAR_END)
    versions = [s[1][0] for s in sent if "INSERT INTO ops.schema_migrations" in s[0]]
    assert versions == [m.version for m in MIGRATIONS if m.version != 1]
    assert done.versions_recorded == versions
    # Procedures: dropped when present, created again, both in autocommit; no applock.
    rendered = procedures.render_all()
    assert done.procedures == [p.qualified_name for p in rendered]
    creates = [s for s in sent if s[0] == "EXEC sp_executesql ?"]
    assert [s[1][0] for s in creates] == [synapse_deploy.procedure_sql(p) for p in rendered]
    assert all(s[2] for s in creates)
    drops = [s for s in sent if "DROP PROCEDURE" in s[0]]
    assert len(drops) == len(rendered) and all(s[2] for s in drops)
    assert not any("sp_getapplock" in str(s) for s in sent)
    assert connection.commits == 1 and connection.rollbacks == 0


def test_a_pool_reading_uncommitted_is_refused_before_anything_is_created() -> None:
    """A scripted fake stands in for pyodbc: no Synapse exists offline."""
    connection = ScriptedPool(rcsi=False)
    with pytest.raises(ConfigError, match="READ_COMMITTED_SNAPSHOT ON"):
        synapse_deploy.init_synapse(_pool(connection), APPLIED_AT)
    assert not any("CREATE" in s[0] for s in connection.sent)


def test_a_version_1_pool_is_refused_with_what_to_do() -> None:
    """A scripted fake stands in for pyodbc: no Synapse exists offline."""
    connection = ScriptedPool(daily_is_table=True)
    with pytest.raises(ConfigError, match="schema version 1"):
        synapse_deploy.init_synapse(_pool(connection), APPLIED_AT)


def test_the_set_based_calendar_fill_adds_exactly_the_missing_days(
    warehouse: DuckDBWarehouse,
) -> None:
    warehouse.execute(
        "DELETE FROM dim.calendar WHERE calendar_date >= '2031-01-01' "
        "OR calendar_date < '2000-03-01'"
    )
    total = (CALENDAR_END - CALENDAR_START).days + 1
    added = warehouse.execute(
        synapse_deploy._FILL_CALENDAR, {"start": CALENDAR_START, "end": CALENDAR_END}
    )
    assert added == total - (date(2031, 1, 1) - date(2000, 3, 1)).days
    assert warehouse.query(
        "SELECT COUNT(*), MIN(calendar_date), MAX(calendar_date) FROM dim.calendar"
    ) == [(total, CALENDAR_START, CALENDAR_END)]
    assert (
        warehouse.execute(
            synapse_deploy._FILL_CALENDAR, {"start": CALENDAR_START, "end": CALENDAR_END}
        )
        == 0
    )
