"""`company-activity ddl`: print the T-SQL DDL generated from the table declarations.

    company-activity ddl > sql/ddl/azure_sql.sql

The DDL is generated from the table declarations in warehouse/schema.py; a test keeps
sql/ddl/azure_sql.sql current.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.warehouse.ddl import full_tsql_script

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "ddl",
        help="print the Azure SQL DDL (sql/ddl/azure_sql.sql)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    print(full_tsql_script(), end="")
    return 0
