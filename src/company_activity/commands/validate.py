"""`company-activity validate --date D`: check a date's output; non-zero exit on a hard failure."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date
from company_activity.validation import validate

if TYPE_CHECKING:
    from company_activity.cli import Context

EXIT_FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "validate",
        help="check a date's analytics rows: unique keys, complete grid, flags, counts per layer",
    )
    parser.add_argument("--date", type=iso_date, required=True, help="date, YYYY-MM-DD")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.warehouse() as wh:
        result = validate(wh, args.date)
    print("\n".join(result.summary_lines()))
    return 0 if result.ok else EXIT_FAILED
