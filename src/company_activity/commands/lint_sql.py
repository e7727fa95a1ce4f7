"""`company-activity lint-sql [PATH ...]`: check transform files against the dialect contract.

    company-activity lint-sql
    company-activity lint-sql sql/populate_analytics.sql

Without paths it checks sql/*.sql and sql/views/*.sql; exit 1 on any violation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.warehouse.sqllint import lint_file, transform_files, view_files

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "lint-sql",
        help="check T-SQL transform files against the dialect contract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="*", help="files to check (default: sql/*.sql and sql/views/*.sql)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    paths = [Path(p) for p in args.paths] or [*transform_files("sql"), *view_files("sql")]
    found = 0
    for path in paths:
        for violation in lint_file(path):
            print(violation.format(str(path)))
            found += 1
    print(f"{len(paths)} file(s) checked, {found} violation(s)")
    return 1 if found else 0
