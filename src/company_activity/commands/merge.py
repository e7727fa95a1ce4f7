"""`company-activity merge --start D1 --end D2`: the dimension and analytics merges for a range.

    company-activity merge --start 2025-11-01 --end 2025-11-07

Merges each date's CRM snapshot into dim.companies and builds the analytics rows for
D1..D2, restating later days whose values change. Every date must have a completed usage
load. Idempotent: rerunning changes nothing.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date
from company_activity.model import merge as model

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "merge",
        help="merge dim.companies and analytics.company_activity_daily for loaded dates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--start", type=iso_date, required=True, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", type=iso_date, help="last date, YYYY-MM-DD (default: --start)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.warehouse() as wh:
        result = model.merge(wh, args.start, args.end or args.start, ctx.run_id, ctx.started_at)
    print(result.summary())
    return 0
