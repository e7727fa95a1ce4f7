"""`company-activity status`: where the warehouse is, which dates are covered, and how many
rows each table shows.

    company-activity status

Coverage: the first and last completed date, the gaps between them, the dates whose latest
run failed (with the step and error), the dates with warnings, and the last run (id, when,
outcome). Reads the warehouse only (opened read-only): never creates a file or a folder.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.pipeline.coverage import coverage, render
from company_activity.warehouse.migrations import applied_versions
from company_activity.warehouse.schema import TABLES, VIEWS

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "status",
        help="show the coverage (completed dates, gaps, failures, warnings, last run), the "
        "schema version and rows per table",
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
        for line in render(coverage(wh)):
            print(line)
        for declared in (*TABLES, *VIEWS):
            count = wh.scalar(f"SELECT COUNT(*) FROM {declared.name}")
            print(f"  {declared.name:<40} {count:>12,} rows")
    return 0
