"""Versioned schema migrations, recorded in ops.schema_migrations.

Each migration is a list of operations that create only what is missing, so a database at
any version reaches the latest one without losing a row. A migration and its record commit
together. Add a new Migration at the end of MIGRATIONS for every schema change; never edit
an applied one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from company_activity import ddl
from company_activity.schema import CALENDAR, SCHEMA_MIGRATIONS, SCHEMAS, TABLES, Table, table
from company_activity.warehouse.base import Warehouse

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


Operation = CreateTable | AddColumn | FillCalendar


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
)


def applied_versions(wh: Warehouse) -> set[int]:
    if not wh.table_exists(SCHEMA_MIGRATIONS.name):
        return set()
    return {int(r[0]) for r in wh.query("SELECT version FROM ops.schema_migrations")}


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
            wh.execute(
                "INSERT INTO ops.schema_migrations (version, description, applied_at) "
                "VALUES (@version, @description, @applied_at)",
                {
                    "version": migration.version,
                    "description": migration.description,
                    "applied_at": applied_at,
                },
            )
        log.info("applied schema migration %s: %s", migration.version, migration.description)
        applied.append(migration.version)
    return applied


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max(m.version for m in migrations)
