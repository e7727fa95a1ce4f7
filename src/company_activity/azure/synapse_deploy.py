"""`init-db` on a Synapse dedicated SQL pool: schema, calendar, procedures, settings checked.

What differs from Azure SQL, each from Microsoft's reference for dedicated pools:

- DDL cannot run inside a user transaction ("Use transactions in dedicated SQL pool"), so
  every batch of sql/ddl/synapse.sql runs on its own in autocommit mode, guarded so that a
  rerun creates only what is missing;
- the default isolation is READ UNCOMMITTED (same page): a reader could see a merge half
  done. init-db refuses a pool without READ_COMMITTED_SNAPSHOT, naming the command to run;
- procedures: dedicated pools have `CREATE PROCEDURE` but not `CREATE OR ALTER` ("CREATE
  PROCEDURE (Transact-SQL)", Synapse syntax), so a procedure is dropped when it exists and
  created again, each in its own batch; there is no `sp_getapplock`, so the body runs in
  one transaction with TRY/CATCH and an explicit ROLLBACK, and writers are kept apart by
  the factory (docs/deploy.md);
- no recursive CTE: the calendar is filled set-based from a cross join of digits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from company_activity.azure.procedures import PARAMETER_TYPES, PROCEDURE_SCHEMA, Procedure
from company_activity.azure.procedures import render_all as render_procedures
from company_activity.azure.synapse import full_script
from company_activity.errors import ConfigError
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.migrations import (
    CALENDAR_END,
    CALENDAR_START,
    MIGRATIONS,
    applied_versions,
    is_base_table,
    record_migration,
)
from company_activity.warehouse.schema import COMPANY_ACTIVITY_DAILY
from company_activity.warehouse.tsql import split_batches

log = logging.getLogger(__name__)

_RCSI = "SELECT is_read_committed_snapshot_on FROM sys.databases WHERE name = DB_NAME()"

# Days 0..99,999 from a cross join of five digit tables (no recursive CTE in dedicated pools);
# only the missing days of start..end are inserted, so a rerun adds nothing.
_DIGITS = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
_FILL_CALENDAR = f"""
INSERT INTO dim.calendar (calendar_date)
SELECT days.calendar_date
FROM (
    SELECT DATEADD(
        day,
        d1.d + 10 * d2.d + 100 * d3.d + 1000 * d4.d + 10000 * d5.d,
        CAST(@start AS DATE)
    ) AS calendar_date
    FROM ({_DIGITS}) AS d1
    CROSS JOIN ({_DIGITS}) AS d2
    CROSS JOIN ({_DIGITS}) AS d3
    CROSS JOIN ({_DIGITS}) AS d4
    CROSS JOIN ({_DIGITS}) AS d5
) AS days
WHERE
    days.calendar_date <= CAST(@end AS DATE)
    AND NOT EXISTS (
        SELECT 1 FROM dim.calendar AS c WHERE c.calendar_date = days.calendar_date
    )
"""


def procedure_sql(procedure: Procedure) -> str:
    """`CREATE PROCEDURE` text for a dedicated pool: the file's batch, unchanged, in one
    transaction that a failure rolls back (TRY/CATCH, then the error raised again)."""
    signature = ",\n".join(f"    @{p} {PARAMETER_TYPES[p]}" for p in procedure.parameters)
    return (
        f"-- Generated from sql/{procedure.source.name} by company_activity.azure."
        "synapse_deploy; do not edit.\n"
        f"CREATE PROCEDURE {procedure.qualified_name}\n"
        f"{signature}\n"
        "AS\n"
        "BEGIN\n"
        "    SET NOCOUNT ON;\n"
        "    BEGIN TRY\n"
        "        BEGIN TRANSACTION;\n"
        "\n"
        # The body is not re-indented: that would change any multi-line string literal.
        f"{procedure.body}\n"
        "\n"
        "        COMMIT TRANSACTION;\n"
        "    END TRY\n"
        "    BEGIN CATCH\n"
        "        IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;\n"
        "        THROW;\n"
        "    END CATCH;\n"
        "END;\n"
    )


def drop_procedure_sql(procedure: Procedure) -> str:
    """Drop the procedure when it exists (dedicated pools: no `IF EXISTS` on DROP)."""
    return (
        f"IF OBJECT_ID('{procedure.qualified_name}', 'P') IS NOT NULL\n"
        f"    DROP PROCEDURE {procedure.qualified_name};"
    )


@dataclass(frozen=True)
class SynapseInit:
    """What `init-db` did on a dedicated pool."""

    versions_recorded: list[int]
    procedures: list[str]


def check_settings(wh: AzureSqlWarehouse) -> None:
    """Refuse a pool whose readers would see uncommitted merges (READ UNCOMMITTED)."""
    if wh.scalar(_RCSI) != 1:  # bit: 1 or True when on
        raise ConfigError(
            "this dedicated SQL pool runs READ UNCOMMITTED (the default): readers could see a "
            "merge half done. Connected to master, run `ALTER DATABASE [<pool>] SET "
            "READ_COMMITTED_SNAPSHOT ON;` then rerun init-db (docs/deploy.md)."
        )


def init_synapse(wh: AzureSqlWarehouse, applied_at: datetime) -> SynapseInit:
    """Create what is missing on a dedicated pool, fill the calendar, deploy the procedures.

    Raises ConfigError when READ_COMMITTED_SNAPSHOT is off, or when the pool still has the
    version-1 analytics table (this path creates the current schema; it does not move rows).
    """
    check_settings(wh)
    if is_base_table(wh, COMPANY_ACTIVITY_DAILY.name):
        raise ConfigError(
            f"{COMPANY_ACTIVITY_DAILY.name} is still a table (schema version 1) in this pool; "
            "init-db creates the current schema on a dedicated pool but does not move rows: "
            "copy them to analytics.company_activity_metrics and drop the table first "
            "(docs/deploy.md, Synapse)."
        )
    for batch in split_batches(full_script()):
        wh.run_autocommit(batch)
    with wh.transaction():
        wh.execute(_FILL_CALENDAR, {"start": CALENDAR_START, "end": CALENDAR_END})
        done = applied_versions(wh)
        recorded = []
        for migration in sorted(MIGRATIONS, key=lambda m: m.version):
            if migration.version in done:
                continue
            record_migration(wh, migration, applied_at)
            recorded.append(migration.version)
    return SynapseInit(recorded, deploy_synapse_procedures(wh))


def deploy_synapse_procedures(wh: AzureSqlWarehouse) -> list[str]:
    """Drop and create one procedure per transform file, each batch in autocommit mode."""
    procedures = render_procedures()
    wh.run_autocommit(
        f"IF SCHEMA_ID('{PROCEDURE_SCHEMA}') IS NULL EXEC ('CREATE SCHEMA {PROCEDURE_SCHEMA}');"
    )
    for procedure in procedures:
        wh.run_autocommit(drop_procedure_sql(procedure))
        # Through sp_executesql: the text is a bound value, its @parameters stay intact.
        wh.run_autocommit(
            "EXEC sp_executesql @procedure_sql", {"procedure_sql": procedure_sql(procedure)}
        )
        log.info("deployed stored procedure %s (dedicated pool)", procedure.qualified_name)
    return [p.qualified_name for p in procedures]
