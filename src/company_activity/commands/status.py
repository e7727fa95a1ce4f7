"""`company-activity status`: where the warehouse is and how many rows each table shows.

    company-activity status

Reads the warehouse only (opened read-only): never creates a file or a folder.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.warehouse.migrations import applied_versions
from company_activity.warehouse.schema import TABLES, VIEWS

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "status",
        help="show the schema version and rows per table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.warehouse(read_only=True, schema=False) as wh:
        where = ctx.settings.duckdb_path if wh.engine == "duckdb" else "Azure SQL"
        versions = applied_versions(wh)
        print(f"warehouse: {where} ({wh.engine}), schema version {max(versions, default=0)}")
        if not versions:
            print("no schema yet: run `company-activity init-db`")
            return 1
        for declared in (*TABLES, *VIEWS):
            count = wh.scalar(f"SELECT COUNT(*) FROM {declared.name}")
            print(f"  {declared.name:<40} {count:>12,} rows")
    return 0
