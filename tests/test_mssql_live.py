"""The live-engine suite: the pipeline on SQL Server 2022 or Azure SQL, compared with DuckDB.

Runs only when MSSQL_TEST_CONN_STR holds an ODBC connection string (ODBC Driver 18) to an
empty database whose name contains "test": the suite drops the package's objects there and
builds them again. Without it every test here reports skipped. The CI workflow
(.github/workflows/ci.yml) runs it against a SQL Server 2022 service container; nothing in
`.ci/run` can start one.

What it proves on the real engine: `init-db` (tables, types, collations, view, procedures),
the loads, the merges (the CLI's and the stored procedures'), validation and a rollback, with
every analytics value equal to a DuckDB run of the same inputs; the application lock's
timeout; a killed session reconnecting; a non-ASCII id surviving a VARCHAR key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity.azure import procedures
from company_activity.errors import TransientError
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.schema import TABLES

CONN_ENV = "MSSQL_TEST_CONN_STR"
CONN_STR = os.environ.get(CONN_ENV, "")

pytestmark = [
    pytest.mark.mssql,
    pytest.mark.skipif(not CONN_STR, reason=f"{CONN_ENV} is not set: no SQL Server to run on"),
]

START, END = date(2025, 5, 1), date(2025, 5, 10)  # ten dates: the backfill (range) path too
COMPANIES, SEED = 30, 5
SCHEMAS = ("stg", "dim", "analytics", "ops")
LINEAGE = {"run_id", "created_at", "updated_at", "loaded_at", "src_file_name"}
# What the two engines are compared on: every business column of the model and staging.
COMPARED = (
    ("analytics.company_activity_daily", ("company_id", "activity_date")),
    ("analytics.company_activity_metrics", ("company_id", "activity_date")),
    ("dim.companies", ("company_id",)),
    ("stg.product_usage", ("file_date", "company_id", "src_line_number")),
    ("stg.crm_companies", ("snapshot_date", "src_line_number")),
    ("stg.quarantine", ("source", "file_date", "src_line_number")),
)


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "company_activity", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def _base_env(tmp: Path, name: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_", "PYTHON", "VIRTUAL_ENV", "ODBC")
    env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
    env["LOCAL_BLOB_DIR"] = str(tmp / f"{name}-blob")
    return env


def _drop_everything(wh: AzureSqlWarehouse) -> None:
    """Drop the package's objects (the database must be a test database)."""
    database = str(wh.scalar("SELECT DB_NAME()"))
    if "test" not in database.lower():
        pytest.fail(f"{CONN_ENV} names database {database!r}; the suite only runs on a *test* one")
    schemas = ", ".join(f"'{s}'" for s in SCHEMAS)
    objects = wh.query(
        "SELECT o.type, s.name + '.' + o.name FROM sys.objects AS o "
        "JOIN sys.schemas AS s ON s.schema_id = o.schema_id "
        f"WHERE s.name IN ({schemas}) AND o.type IN ('V', 'P', 'U')"
    )
    order = {"V": 0, "P": 1, "U": 2}
    kinds = {"V": "VIEW", "P": "PROCEDURE", "U": "TABLE"}
    with wh.transaction():
        for kind, name in sorted(objects, key=lambda o: order[str(o[0]).strip()]):
            wh.execute_native(f"DROP {kinds[str(kind).strip()]} {name};")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The same mock inputs through the CLI on SQL Server and on DuckDB."""
    tmp = tmp_path_factory.mktemp("live")
    with AzureSqlWarehouse(CONN_STR) as wh:
        _drop_everything(wh)
    sql_env = {**_base_env(tmp, "mssql"), "SQL_CONN_STR": CONN_STR}
    duck_env = {**_base_env(tmp, "duckdb"), "DUCKDB_PATH": str(tmp / "w.duckdb")}
    run = ("run", "--mock", "--start", START.isoformat(), "--end", END.isoformat())
    mock = ("--companies", str(COMPANIES), "--seed", str(SEED))
    for env in (sql_env, duck_env):
        _cli(env, tmp, "init-db")
        _cli(env, tmp, *run, *mock)
    again = _cli(sql_env, tmp, "init-db")
    yield {"tmp": tmp, "sql_env": sql_env, "duck_env": duck_env, "init_again": again.stdout}


def _rows(wh: Warehouse, table: str, key: tuple[str, ...]) -> list[tuple[Any, ...]]:
    columns = sorted(c for c in wh.table_columns(table) if c not in LINEAGE)
    rows = wh.query(f"SELECT {', '.join(columns)} FROM {table}")
    positions = [columns.index(k) for k in key]
    return sorted(rows, key=lambda r: tuple(str(r[p]) for p in positions))


def _snapshot(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {table: _rows(wh, table, key) for table, key in COMPARED}


def test_init_db_creates_the_declared_schema_and_procedures(engines: dict[str, Any]) -> None:
    with AzureSqlWarehouse(CONN_STR) as wh:
        for table in TABLES:
            columns = wh.table_columns(table.name)
            assert set(columns) == set(table.column_names), table.name
            for column in table.columns:
                declared = column.sql_type.split("(")[0].lower()
                assert columns[column.name][0] == declared, (table.name, column.name)
                assert columns[column.name][1] == ("YES" if column.nullable else "NO")
        collations: dict[str, str] = dict(
            wh.query(
                "SELECT c.name, c.collation_name FROM sys.columns AS c "
                "WHERE c.object_id = OBJECT_ID('dim.companies') AND c.collation_name IS NOT NULL"
            )
        )
        company = next(t for t in TABLES if t.name == "dim.companies")
        for column in company.columns:
            if column.collation:
                assert collations[column.name] == column.collation, column.name
        deployed = {
            str(r[0])
            for r in wh.query(
                "SELECT s.name + '.' + p.name FROM sys.procedures AS p "
                "JOIN sys.schemas AS s ON s.schema_id = p.schema_id"
            )
        }
        assert {p.qualified_name for p in procedures.render_all()} <= deployed
    assert "nothing to do" in engines["init_again"]


def test_every_value_equals_the_duckdb_run_of_the_same_inputs(engines: dict[str, Any]) -> None:
    with (
        AzureSqlWarehouse(CONN_STR) as sql_wh,
        DuckDBWarehouse(Path(engines["duck_env"]["DUCKDB_PATH"])) as duck_wh,
    ):
        on_sql, on_duck = _snapshot(sql_wh), _snapshot(duck_wh)
    for table, _ in COMPARED:
        assert on_sql[table], f"{table} is empty on SQL Server"
        assert on_sql[table] == on_duck[table], f"{table} differs between the engines"


def test_validation_passes_on_sql_server(engines: dict[str, Any]) -> None:
    for day in (START, END):
        _cli(engines["sql_env"], engines["tmp"], "validate", "--date", day.isoformat())


def test_a_rollback_then_the_stored_procedures_rebuild_the_same_rows(
    engines: dict[str, Any],
) -> None:
    day = date(2025, 5, 6)
    key = ("company_id", "activity_date")
    table = "analytics.company_activity_metrics"
    with DuckDBWarehouse(Path(engines["duck_env"]["DUCKDB_PATH"])) as duck_wh:
        expected = [r for r in _rows(duck_wh, table, key) if day in r]
    _cli(engines["sql_env"], engines["tmp"], "rollback", "--date", day.isoformat())
    params = {
        "run_date": day,
        "start_date": day,
        "end_date": day,
        "run_ts": datetime(2025, 6, 1, 2, 0),
        "run_id": "live-procedures",
    }
    with AzureSqlWarehouse(CONN_STR) as wh:
        count = "SELECT COUNT(*) FROM analytics.company_activity_metrics WHERE activity_date = @d"
        assert wh.scalar(count, {"d": day}) == 0
        # What Data Factory runs: the procedures of the merge_analytics step, in order.
        for name in ("usp_merge_usage_companies", "usp_populate_analytics"):
            procedure = next(p for p in procedures.render_all() if p.name == name)
            arguments = ", ".join(f"@{p}" for p in procedure.parameters)
            wh.execute(f"EXEC {procedure.qualified_name} {arguments}", params)
        assert [r for r in _rows(wh, table, key) if day in r] == expected


def test_a_second_writer_of_a_target_times_out_as_a_transient_error(
    engines: dict[str, Any],
) -> None:
    with (
        AzureSqlWarehouse(CONN_STR) as first,
        AzureSqlWarehouse(CONN_STR, lock_timeout_ms=300) as second,
    ):
        with (
            first.transaction("dim.companies"),
            pytest.raises(TransientError, match="not granted"),
            second.transaction("dim.companies"),
        ):
            pass
        with second.transaction("dim.companies"):  # released with the first's transaction
            assert second.scalar("SELECT 1") == 1


def test_a_killed_session_is_replaced_and_the_next_statement_runs(
    engines: dict[str, Any],
) -> None:
    with AzureSqlWarehouse(CONN_STR) as admin, AzureSqlWarehouse(CONN_STR) as victim:
        spid = int(victim.scalar("SELECT @@SPID"))
        admin.run_autocommit(f"KILL {spid}")
        with pytest.raises(TransientError):
            victim.scalar("SELECT 1")
        assert victim.scalar("SELECT 1") == 1
        assert victim.reconnects == 1


def test_a_non_ascii_id_survives_the_varchar_key(engines: dict[str, Any]) -> None:
    company_id = "компания-1"
    with AzureSqlWarehouse(CONN_STR) as wh:
        with wh.transaction("dim.companies"):
            wh.execute(
                "INSERT INTO dim.companies (company_id, company_name, first_seen_date, run_id, "
                "created_at, updated_at) VALUES (@company_id, @company_name, @day, @run_id, "
                "@ts, @ts)",
                {
                    "company_id": company_id,
                    "company_name": "Тест",
                    "day": START,
                    "run_id": "live",
                    "ts": datetime(2025, 6, 1),
                },
            )
        found = wh.scalar(
            "SELECT company_name FROM dim.companies WHERE company_id = @company_id",
            {"company_id": company_id},
        )
        assert found == "Тест"
        wh.execute(
            "DELETE FROM dim.companies WHERE company_id = @company_id", {"company_id": company_id}
        )
