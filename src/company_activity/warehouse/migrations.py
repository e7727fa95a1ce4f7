"""Versioned schema migrations, recorded in ops.schema_migrations.

Each migration is a list of operations that create only what is missing (a table is dropped
only by the operation that moved its rows first), so a database at any version reaches the
latest one without losing a row. A migration and its record commit together. Add a new
Migration at the end of MIGRATIONS for every schema change; never edit an applied one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from company_activity.errors import TerminalError
from company_activity.warehouse import ddl
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.relations import Table, View
from company_activity.warehouse.schema import (
    CALENDAR,
    CHECK_RESULTS,
    COMPANY_ACTIVITY_DAILY,
    COMPANY_ACTIVITY_METRICS,
    CRM_COMPANIES,
    LOAD_AUDITS,
    SCHEMA_MIGRATIONS,
    SCHEMAS,
    TABLES,
    table,
)

log = logging.getLogger(__name__)

CALENDAR_START = date(2000, 1, 1)
CALENDAR_END = date(2099, 12, 31)


@dataclass(frozen=True)
class CreateTable:
    """Create a table (with its current declared columns) unless it exists."""

    table: Table

    def apply(self, wh: Warehouse) -> None:
        wh.execute_native(ddl.create_table(wh.engine, self.table))


@dataclass(frozen=True)
class AddColumn:
    """Add a declared column to an existing table unless it is there already."""

    table: Table
    column_name: str

    def apply(self, wh: Warehouse) -> None:
        wh.execute_native(
            ddl.add_column(wh.engine, self.table, self.table.column(self.column_name))
        )


@dataclass(frozen=True)
class FillCalendar:
    """Insert the calendar days between start and end that are not there yet."""

    start: date
    end: date

    def apply(self, wh: Warehouse) -> None:
        present = {
            r[0]
            for r in wh.query(
                "SELECT calendar_date FROM dim.calendar "
                "WHERE calendar_date BETWEEN CAST(@start AS DATE) AND CAST(@end AS DATE)",
                {"start": self.start, "end": self.end},
            )
        }
        days = (self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1))
        wh.insert_rows(CALENDAR.name, ("calendar_date",), ((d,) for d in days if d not in present))


@dataclass(frozen=True)
class CreateView:
    """Create a view from its declared SELECT, or replace its definition (it holds no rows)."""

    view: View

    def apply(self, wh: Warehouse) -> None:
        wh.execute_native(ddl.create_view(wh.engine, self.view))


@dataclass(frozen=True)
class MoveRowsAndDropTable:
    """Copy a base table's rows with one INSERT ... SELECT (T-SQL), then drop the table.

    Does nothing unless `source` is a base table: on a new database, or one already moved,
    the name is free or belongs to a view. Copy and drop share the migration's transaction,
    so a failed copy drops nothing.
    """

    source: str
    copy_sql: str

    def apply(self, wh: Warehouse) -> None:
        if not is_base_table(wh, self.source):
            return
        copied = wh.execute(self.copy_sql)
        wh.execute_native(ddl.drop_table(self.source))
        log.info("moved %s row(s) out of %s and dropped it", copied, self.source)


@dataclass(frozen=True)
class DropProcedure:
    """Drop a stored procedure that is no longer rendered from sql/ (Azure SQL only)."""

    name: str

    def apply(self, wh: Warehouse) -> None:
        if wh.engine == "azuresql":  # the local engine has no procedures
            wh.execute_native(f"DROP PROCEDURE IF EXISTS {self.name};")


Operation = (
    CreateTable | AddColumn | FillCalendar | CreateView | MoveRowsAndDropTable | DropProcedure
)


def is_base_table(wh: Warehouse, name: str) -> bool:
    """True when schema.name is a table (not a view, not missing)."""
    return wh.table_exists(name, table_type="BASE TABLE")


# Version 1 stored the daily rows with their attributes and final churn reasons and flags;
# the metrics table keeps what does not depend on the dimension. The usage-only reasons and
# flags are read back from the stored lists (no_recent_contact and no_crm_record are left
# out: the view derives them from the dimension again). The tokens never contain one another,
# so a LIKE finds each exactly.
_V1_DAILY_TO_METRICS = """
INSERT INTO analytics.company_activity_metrics (
    company_id, activity_date, active_users, events, rolling_7d_active_users,
    rolling_30d_events, active_days_30d, activity_consistency_30d, peak_active_users_30d,
    usage_density, active_users_dod_pct, active_users_wow_pct, last_activity_date,
    days_since_last_activity, engagement_score, has_inactive_14d, has_usage_drop,
    has_duplicate_source_records, has_partial_window, has_rejected_source_records,
    run_id, created_at, updated_at
)
SELECT
    a.company_id, a.activity_date, a.active_users, a.events, a.rolling_7d_active_users,
    a.rolling_30d_events, a.active_days_30d, a.activity_consistency_30d,
    a.peak_active_users_30d, a.usage_density, a.active_users_dod_pct, a.active_users_wow_pct,
    a.last_activity_date, a.days_since_last_activity, a.engagement_score,
    CASE WHEN a.churn_risk_reasons LIKE '%inactive_14d%' THEN 1 ELSE 0 END,
    CASE WHEN a.churn_risk_reasons LIKE '%usage_drop%' THEN 1 ELSE 0 END,
    CASE WHEN a.data_quality_flag LIKE '%duplicate_source_records%' THEN 1 ELSE 0 END,
    CASE WHEN a.data_quality_flag LIKE '%partial_window%' THEN 1 ELSE 0 END,
    CASE WHEN a.data_quality_flag LIKE '%rejected_source_records%' THEN 1 ELSE 0 END,
    a.run_id, a.created_at, a.updated_at
FROM analytics.company_activity_daily AS a
"""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    operations: tuple[Operation, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema: staging, quarantine, calendar, dimension, analytics, run control",
        (
            *(CreateTable(t) for t in TABLES if t is not SCHEMA_MIGRATIONS),
            FillCalendar(CALENDAR_START, CALENDAR_END),
        ),
    ),
    # Migration 1 now creates the current tables on a new database (the metrics table, not
    # the version-1 analytics table), so there the move finds nothing; a version-1 database
    # has its rows moved. Both end with the same objects.
    Migration(
        2,
        "analytics.company_activity_daily becomes a view over company_activity_metrics "
        "and dim.companies (attributes SCD1 without rewriting rows)",
        (
            CreateTable(COMPANY_ACTIVITY_METRICS),
            MoveRowsAndDropTable(COMPANY_ACTIVITY_DAILY.name, _V1_DAILY_TO_METRICS),
            CreateView(COMPANY_ACTIVITY_DAILY),
            DropProcedure("ops.usp_restate_company_attributes"),
        ),
    ),
    Migration(
        3,
        "CRM rows staged with an unreadable field NULL say which field, its value and why; "
        "load audits count them",
        (
            AddColumn(CRM_COMPANIES, "issue_field"),
            AddColumn(CRM_COMPANIES, "issue_value"),
            AddColumn(CRM_COMPANIES, "issue_reason"),
            AddColumn(LOAD_AUDITS, "fields_nulled"),
        ),
    ),
    Migration(
        4,
        "ops.check_results: each data-quality check's result per date and run",
        (CreateTable(CHECK_RESULTS),),
    ),
)


def record_migration(wh: Warehouse, migration: Migration, applied_at: datetime) -> None:
    """Note in ops.schema_migrations that `migration` was applied at `applied_at`."""
    wh.execute(
        "INSERT INTO ops.schema_migrations (version, description, applied_at) "
        "VALUES (@version, @description, @applied_at)",
        {
            "version": migration.version,
            "description": migration.description,
            "applied_at": applied_at,
        },
    )


def applied_versions(wh: Warehouse) -> set[int]:
    if not wh.table_exists(SCHEMA_MIGRATIONS.name):
        return set()
    return {int(r[0]) for r in wh.query("SELECT version FROM ops.schema_migrations")}


def require_schema(wh: Warehouse) -> None:
    """TerminalError saying what to do when the schema is missing or older than this release's."""
    versions = applied_versions(wh)
    if not versions:
        raise TerminalError("the warehouse has no schema yet: run `company-activity init-db` first")
    if max(versions) < latest_version():
        raise TerminalError(
            f"the warehouse schema is at version {max(versions)} and this release needs "
            f"{latest_version()}: run `company-activity init-db` to upgrade it (it keeps every row)"
        )


def migrate(
    wh: Warehouse,
    applied_at: datetime,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Apply every pending migration in order; return the versions applied now."""
    with wh.transaction():
        for schema in SCHEMAS:
            wh.execute_native(ddl.create_schema(wh.engine, schema))
        wh.execute_native(ddl.create_table(wh.engine, table(SCHEMA_MIGRATIONS.name)))
    done = applied_versions(wh)
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        with wh.transaction():
            for operation in migration.operations:
                operation.apply(wh)
            record_migration(wh, migration, applied_at)
        log.info("applied schema migration %s: %s", migration.version, migration.description)
        applied.append(migration.version)
    return applied


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max(m.version for m in migrations)
