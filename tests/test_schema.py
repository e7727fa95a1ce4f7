"""Schema: one declaration per table, both engines agree with it, migrations never lose data."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from pathlib import Path

from company_activity.warehouse import migrations
from company_activity.warehouse.ddl import full_tsql_script
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import (
    MIGRATIONS,
    AddColumn,
    Migration,
    latest_version,
    migrate,
)
from company_activity.warehouse.relations import Column, duckdb_type
from company_activity.warehouse.schema import TABLES, VIEWS, table

ROOT = Path(__file__).resolve().parents[1]
TS = datetime(2025, 1, 1)


def test_duckdb_information_schema_matches_declarations(warehouse: DuckDBWarehouse) -> None:
    for declared in TABLES:
        actual = warehouse.table_columns(declared.name)
        expected = {
            c.name: (duckdb_type(c.sql_type), "YES" if c.nullable else "NO")
            for c in declared.columns
        }
        assert actual == expected, declared.name


def test_duckdb_views_show_the_declared_types(warehouse: DuckDBWarehouse) -> None:
    """Types only: DuckDB reports every view column nullable (tests/test_view_attributes.py
    checks that the NOT NULL ones hold no NULL)."""
    for declared in VIEWS:
        actual = warehouse.table_columns(declared.name)
        expected = {c.name: (duckdb_type(c.sql_type), "YES") for c in declared.columns}
        assert actual == expected, declared.name
        names = warehouse.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = @schema AND table_name = @name ORDER BY ordinal_position",
            {"schema": declared.schema, "name": declared.short_name},
        )
        assert tuple(r[0] for r in names) == declared.column_names, "the declared order"


def test_checked_in_azure_sql_ddl_is_current() -> None:
    assert (ROOT / "sql/ddl/azure_sql.sql").read_text() == full_tsql_script(), (
        "run: company-activity ddl > sql/ddl/azure_sql.sql"
    )


def test_ddl_declares_every_column_with_its_type() -> None:
    script = full_tsql_script()
    for declared in TABLES:
        assert f"CREATE TABLE {declared.name} (" in script
        for column in declared.columns:
            assert f"{column.name} {column.sql_type.replace(',', ', ')}" in script
    for view in VIEWS:
        assert f"CREATE OR ALTER VIEW {view.name} AS\n" in script


def test_init_twice_changes_nothing_and_keeps_rows(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    every = [m.version for m in MIGRATIONS]
    assert migrate(wh, TS) == every
    wh.execute(
        "INSERT INTO dim.companies (company_id, first_seen_date, run_id, created_at, updated_at) "
        "VALUES ('acme', CAST(@d AS DATE), 'r', CAST(@ts AS DATETIME2(6)), "
        "CAST(@ts AS DATETIME2(6)))",
        {"d": date(2025, 1, 1), "ts": TS},
    )
    calendar_rows = wh.scalar("SELECT COUNT(*) FROM dim.calendar")
    assert migrate(wh, TS) == []
    assert wh.scalar("SELECT COUNT(*) FROM dim.companies") == 1
    assert wh.scalar("SELECT COUNT(*) FROM dim.calendar") == calendar_rows
    assert sorted(wh.query("SELECT version FROM ops.schema_migrations")) == [(v,) for v in every]
    wh.close()


def test_calendar_is_dense(warehouse: DuckDBWarehouse) -> None:
    first, last, count = warehouse.query(
        "SELECT MIN(calendar_date), MAX(calendar_date), COUNT(*) FROM dim.calendar"
    )[0]
    assert (first, last) == (migrations.CALENDAR_START, migrations.CALENDAR_END)
    assert count == (last - first).days + 1


def test_a_later_migration_upgrades_in_place_without_data_loss(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    migrate(wh, TS)
    wh.insert_rows("dim.calendar", ["calendar_date"], [])  # no-op insert is fine
    wh.execute(
        "INSERT INTO ops.rollbacks (run_id, activity_date, analytics_rows_deleted, "
        "staging_rows_deleted, rolled_back_at) VALUES ('r', CAST(@d AS DATE), 3, 0, "
        "CAST(@ts AS DATETIME2(6)))",
        {"d": date(2025, 1, 1), "ts": TS},
    )
    original = table("ops.rollbacks")
    widened = dataclasses.replace(
        original, columns=(*original.columns, Column("reason", "NVARCHAR(400)"))
    )
    later = latest_version() + 1
    v_next = Migration(later, "rollbacks get a reason", (AddColumn(widened, "reason"),))
    assert migrate(wh, TS, (*MIGRATIONS, v_next)) == [later]
    assert migrate(wh, TS, (*MIGRATIONS, v_next)) == []
    assert wh.query("SELECT run_id, analytics_rows_deleted, reason FROM ops.rollbacks") == [
        ("r", 3, None)
    ]
    assert sorted(r[0] for r in wh.query("SELECT version FROM ops.schema_migrations")) == [
        *range(1, later + 1)
    ]
    wh.close()


def test_azure_sql_keys_compare_binary_and_attributes_case_sensitively() -> None:
    """Rule 7: Azure SQL's default case-insensitive collation must not decide joins or changes."""
    script = full_tsql_script()
    for declared in TABLES:
        for column in declared.columns:
            if column.name == "company_id":
                assert column.collation == "Latin1_General_100_BIN2_UTF8", declared.name
            if column.name in ("company_name", "country", "industry_tag"):
                assert column.collation == "Latin1_General_100_CS_AS_SC", declared.name
            if column.collation:
                assert (
                    f"{column.name} {column.sql_type.replace(',', ', ')} COLLATE {column.collation}"
                    in script
                )


def test_azure_sql_indexes_the_merges_date_lookups() -> None:
    script = full_tsql_script()
    assert (
        "CREATE NONCLUSTERED INDEX ix_company_activity_metrics_activity_date\n"
        "        ON analytics.company_activity_metrics (activity_date);"
    ) in script
