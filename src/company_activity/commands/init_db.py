"""`company-activity init-db`: create or upgrade the warehouse schema; never drops data.

    company-activity init-db

Applies every pending migration in order and records it in ops.schema_migrations; safe to
rerun, and an upgrade keeps every row. On Azure SQL it also deploys the transforms as stored
procedures.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.azure.procedures import deploy_procedures
from company_activity.azure.synapse_deploy import init_synapse
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.migrations import latest_version, migrate

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "init-db",
        help="create or upgrade the warehouse schema (idempotent, never drops data)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.warehouse(schema=False) as wh:
        if isinstance(wh, AzureSqlWarehouse) and wh.is_synapse:
            return _run_synapse(wh, ctx)
        applied = migrate(wh, ctx.started_at)
        where = ctx.settings.duckdb_path if wh.engine == "duckdb" else "Azure SQL"
        if wh.engine == "azuresql":
            # Data Factory runs the transforms as stored procedures made from the same sql/ files.
            procedures = deploy_procedures(wh)
            print(f"deployed {len(procedures)} stored procedure(s): {', '.join(procedures)}")
    if applied:
        print(f"schema at version {latest_version()} in {where} (applied {applied})")
    else:
        print(f"schema already at version {latest_version()} in {where}; nothing to do")
    return 0


def _run_synapse(wh: AzureSqlWarehouse, ctx: Context) -> int:
    """A Synapse dedicated SQL pool: its own DDL, outside transactions (synapse_deploy)."""
    done = init_synapse(wh, ctx.started_at)
    print(f"deployed {len(done.procedures)} stored procedure(s): {', '.join(done.procedures)}")
    print(
        f"schema at version {latest_version()} in the Synapse dedicated SQL pool "
        f"(recorded {done.versions_recorded or 'nothing new'})"
    )
    return 0
