"""SCD1 attributes through the view analytics.company_activity_daily.

The metrics table holds what does not depend on the dimension; the view joins dim.companies,
so a CRM change shows on every row of a company without rewriting any. These tests run on
real DuckDB files; the one Azure SQL test records statements instead (no SQL Server offline)
and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from company_activity.errors import SqlContractError
from company_activity.model import merge as model
from company_activity.warehouse import ddl
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import (
    CALENDAR_END,
    CALENDAR_START,
    MIGRATIONS,
    CreateTable,
    FillCalendar,
    Migration,
    is_base_table,
    migrate,
)
from company_activity.warehouse.relations import Table, View
from company_activity.warehouse.schema import (
    COMPANY_ACTIVITY_DAILY,
    COMPANY_ACTIVITY_METRICS,
    SCHEMA_MIGRATIONS,
    TABLES,
)
from company_activity.warehouse.sqllint import lint_file, view_files
from tests.reference_model import History
from tests.test_model import (
    RUN_TS,
    actual_rows,
    assert_matches_reference,
    day,
    load_crm_day,
    load_usage_day,
    write_history,
)

ROOT = Path(__file__).resolve().parents[1]
DAILY = COMPANY_ACTIVITY_DAILY.name
METRICS = COMPANY_ACTIVITY_METRICS.name

# analytics.company_activity_daily as version 1 stored it: a table with the view's columns.
V1_DAILY = Table(
    DAILY,
    COMPANY_ACTIVITY_DAILY.columns,
    ("company_id", "activity_date"),
    duckdb_enforces_key=False,
    indexes=(("activity_date",),),
)
V1_TABLES = tuple(V1_DAILY if t is COMPANY_ACTIVITY_METRICS else t for t in TABLES)
V1_MIGRATIONS = (
    Migration(
        1,
        "initial schema (as version 1 created it)",
        (
            *(CreateTable(t) for t in V1_TABLES if t is not SCHEMA_MIGRATIONS),
            FillCalendar(CALENDAR_START, CALENDAR_END),
        ),
    ),
)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    migrate(warehouse, RUN_TS)
    yield warehouse
    warehouse.close()


def rich_history(days: int = 45) -> History:
    """Every churn reason and quality flag on some row, and a company the CRM never lists.

    acme: listed with an old contact (no_recent_contact), active on three days only, with a
    duplicate and a rejected record. beta: usage only (no_crm_record), busy, then a drop
    (usage_drop), then silent (inactive_14d). The first 29 days have a partial window.
    """
    h = History()
    load_crm_day(h, day(0), [("ACME", "Acme", datetime(2023, 12, 1, 9))])
    for n in range(days):
        records: list[tuple[str, int, int]] = []
        if n in (0, 1, 2):
            records.append(("acme", 2, 20))
        if n == 1:
            records.append(("acme ", 3, 30))  # a duplicate: the later line wins
        if n < 20:
            records.append(("beta", 9, 90))
        elif n < 26:
            records.append(("beta", 1, 10))
        load_usage_day(h, day(n), records)
    h.rejected.append((day(2), "acme"))
    return h


def all_rows(wh: DuckDBWarehouse, name: str) -> list[tuple[Any, ...]]:
    return sorted(wh.query(f"SELECT * FROM {name}"), key=lambda r: (r[0], r[1]))


def catalogue(wh: DuckDBWarehouse) -> list[tuple[Any, ...]]:
    """Every object and column of our schemas, as information_schema shows them."""
    return sorted(
        wh.query(
            "SELECT t.table_schema, t.table_name, t.table_type, c.column_name, "
            "c.ordinal_position, c.data_type, c.is_nullable "
            "FROM information_schema.tables AS t INNER JOIN information_schema.columns AS c "
            "ON c.table_schema = t.table_schema AND c.table_name = t.table_name "
            "WHERE t.table_schema IN ('stg', 'dim', 'analytics', 'ops')"
        )
    )


# --- the view's SQL ---------------------------------------------------------------------------


def test_view_files_keep_the_dialect_contract_and_render_for_both_engines() -> None:
    files = view_files(ROOT / "sql")
    assert [p.name for p in files] == [Path(COMPANY_ACTIVITY_DAILY.query_file).name]
    for path in files:
        violations = lint_file(path)
        assert violations == [], "\n".join(v.format(path.name) for v in violations)
    duck = ddl.create_view("duckdb", COMPANY_ACTIVITY_DAILY)
    azure = ddl.create_view("azuresql", COMPANY_ACTIVITY_DAILY)
    assert duck.startswith(f"CREATE OR REPLACE VIEW {DAILY} AS\n")
    assert azure.startswith(f"CREATE OR ALTER VIEW {DAILY} AS\nSELECT\n")
    assert "CONCAT_WS" in azure and "--" not in azure.splitlines()[1], "header comment dropped"


def test_a_view_file_with_parameters_or_two_batches_is_refused(tmp_path: Path) -> None:
    (tmp_path / "views").mkdir()
    view = View("analytics.v", (), query_file="views/v.sql")
    (tmp_path / "views/v.sql").write_text("-- x\nSELECT 1 AS a WHERE 1 = @run_id\n")
    with pytest.raises(SqlContractError, match="cannot take them"):
        ddl.create_view("duckdb", view, tmp_path)
    (tmp_path / "views/v.sql").write_text("SELECT 1 AS a\nGO\nSELECT 2 AS a\n")
    with pytest.raises(SqlContractError, match="one SELECT"):
        ddl.create_view("azuresql", view, tmp_path)


# --- SCD1 without writes ----------------------------------------------------------------------


def test_a_crm_change_rewrites_no_row_and_shows_on_every_row(wh: DuckDBWarehouse) -> None:
    h = rich_history()
    last = 44
    backfill = History(h.usage, h.crm, h.rejected, [r for r in h.loads if r.day < day(last)])
    write_history(wh, backfill)
    model.merge(wh, day(0), day(last - 1), "backfill", RUN_TS)
    metrics_before = all_rows(wh, METRICS)
    before = actual_rows(wh)
    assert before[("beta", day(35))]["data_quality_flag"] == "no_crm_record"
    assert before[("acme", day(43))]["churn_risk_reasons"] == "inactive_14d,no_recent_contact"

    # Day 44: the CRM renames acme with a recent contact and lists beta for the first time.
    crm = History()
    load_crm_day(crm, day(last), [("acme", "Acme Corp", datetime(2024, 4, 1, 8)),
                                  ("beta", "Beta", None)])  # fmt: skip
    load_usage_day(crm, day(last), [])
    write_history(wh, crm)
    h.crm += crm.crm
    h.loads = [*backfill.loads, *crm.loads]
    written = model.merge_dimension(wh, day(last), "crm", RUN_TS + timedelta(days=1))

    assert written == 2, "the two dimension rows, nothing else"
    assert all_rows(wh, METRICS) == metrics_before, "the metrics are not touched"
    rows = actual_rows(wh)
    acme = [rows[("acme", day(n))] for n in range(last)]
    assert {r["company_name"] for r in acme} == {"Acme Corp"}
    assert rows[("acme", day(43))]["days_since_last_contact"] == 12
    assert rows[("acme", day(10))]["days_since_last_contact"] is None  # contact after D
    assert not any("no_recent_contact" in (r["churn_risk_reasons"] or "") for r in acme)
    assert rows[("acme", day(43))]["churn_risk_reasons"] == "inactive_14d"
    assert rows[("acme", day(43))]["is_churn_risk"] == 1
    assert rows[("beta", day(35))]["data_quality_flag"] == "ok"
    assert rows[("beta", day(3))]["data_quality_flag"] == "partial_window"
    # Lineage stays the metrics': the rename is dim.companies' change (its run_id says so).
    assert {r[0] for r in wh.query(f"SELECT DISTINCT run_id FROM {DAILY}")} == {"backfill"}
    assert wh.scalar("SELECT run_id FROM dim.companies WHERE company_id = 'acme'") == "crm"

    model.merge_analytics(wh, day(last), day(last), "daily", RUN_TS + timedelta(days=1))
    h.merged.update(day(n) for n in range(last + 1))
    assert_matches_reference(wh, h)


def test_the_views_not_null_columns_hold_no_null(wh: DuckDBWarehouse) -> None:
    """DuckDB reports every view column nullable; the declared NOT NULL ones must hold."""
    h = rich_history()
    write_history(wh, h)
    model.merge(wh, day(0), day(44), "backfill", RUN_TS)
    required = [c.name for c in COMPANY_ACTIVITY_DAILY.columns if not c.nullable]
    nulls = wh.query(
        "SELECT "
        + ", ".join(f"SUM(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END)" for c in required)
        + f", COUNT(*) FROM {DAILY}"
    )[0]
    assert list(nulls[:-1]) == [0] * len(required) and nulls[-1] == 2 * 45


def test_rollback_and_merge_write_the_metrics_table(wh: DuckDBWarehouse) -> None:
    from company_activity.model.rollback import rollback

    h = rich_history(5)
    write_history(wh, h)
    model.merge(wh, day(0), day(4), "backfill", RUN_TS)
    assert wh.scalar(f"SELECT COUNT(*) FROM {METRICS}") == wh.scalar(
        f"SELECT COUNT(*) FROM {DAILY}"
    )
    result = rollback(wh, day(4), "rb", RUN_TS)
    assert result.analytics_rows_deleted == 2
    assert wh.scalar(f"SELECT COUNT(*) FROM {DAILY} WHERE activity_date = @d", {"d": day(4)}) == 0


# --- migration 2 ------------------------------------------------------------------------------


def test_a_version_1_database_upgrades_without_losing_a_row(tmp_path: Path) -> None:
    # What version 1 stored: the rows the current model shows (the property tests prove they
    # are the definitions), written into the version-1 table beside the same dimension.
    with DuckDBWarehouse(tmp_path / "new.duckdb") as new:
        migrate(new, RUN_TS)
        write_history(new, rich_history())
        model.merge(new, day(0), day(44), "backfill", RUN_TS)
        expected = all_rows(new, DAILY)
        companies = new.query_dicts("SELECT * FROM dim.companies")
        new_catalogue = catalogue(new)
    text = " ".join(str(r) for r in expected)
    tokens = (
        "inactive_14d", "usage_drop", "no_recent_contact", "duplicate_source_records",
        "no_crm_record", "partial_window", "rejected_source_records", "'ok'",
    )  # fmt: skip
    for token in tokens:
        assert token in text, f"the fixture should exercise {token}"

    with DuckDBWarehouse(tmp_path / "v1.duckdb") as v1:
        assert migrate(v1, RUN_TS, V1_MIGRATIONS) == [1]
        assert is_base_table(v1, DAILY) and not v1.table_exists(METRICS)
        v1.insert_rows("dim.companies", list(companies[0]), [tuple(c.values()) for c in companies])
        v1.insert_rows(DAILY, COMPANY_ACTIVITY_DAILY.column_names, expected)

        assert migrate(v1, RUN_TS) == [m.version for m in MIGRATIONS if m.version > 1]

        assert all_rows(v1, DAILY) == expected, "every row, every value, lineage included"
        assert v1.scalar(f"SELECT COUNT(*) FROM {METRICS}") == len(expected)
        assert not is_base_table(v1, DAILY)
        assert catalogue(v1) == new_catalogue, "an upgraded and a new database end identical"
        assert migrate(v1, RUN_TS) == []


def test_a_new_database_gets_the_view_and_no_version_1_table(wh: DuckDBWarehouse) -> None:
    kinds = dict(
        wh.query(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'analytics'"
        )
    )
    assert kinds == {"company_activity_metrics": "BASE TABLE", "company_activity_daily": "VIEW"}
    assert [m.version for m in MIGRATIONS][:2] == [1, 2]


class _AzureLike:
    """Stands in for pyodbc (no SQL Server offline): records statements and answers the
    base-table lookup with a count of 1, as a version-1 database would."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self._rows: list[tuple[Any, ...]] = []
        self.rowcount = 7
        self.description: list[tuple[str]] | None = None

    def cursor(self) -> _AzureLike:
        return self

    def execute(self, sql: str, *params: Any) -> None:
        self.executed.append(sql)
        lookup = "information_schema.tables" in sql
        self._rows = [(1,)] if lookup else []
        self.description = [("count",)] if lookup else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_on_azure_sql_migration_2_moves_then_drops_then_creates_the_view() -> None:
    connection = _AzureLike()
    wh = AzureSqlWarehouse("Driver=x", connect=lambda *_: connection)
    (migration_2,) = [m for m in MIGRATIONS if m.version == 2]
    with wh.transaction():
        for operation in migration_2.operations:
            operation.apply(wh)
    statements = [" ".join(s.split()) for s in connection.executed]
    assert statements[0].startswith(
        f"IF OBJECT_ID('{METRICS}', 'U') IS NULL CREATE TABLE {METRICS}"
    )
    steps = [s for s in statements if not s.startswith(("IF", "SELECT COUNT(*)"))]
    assert steps[0].startswith(f"INSERT INTO {METRICS} (") and steps[0].endswith(
        f"FROM {DAILY} AS a"
    )
    assert steps[1:] == [
        f"DROP TABLE {DAILY};",
        " ".join(ddl.create_view("azuresql", COMPANY_ACTIVITY_DAILY).split()),
        "DROP PROCEDURE IF EXISTS ops.usp_restate_company_attributes;",
    ]
