"""`company-activity rollback --date D [--staging]`: remove a date's rows, ready for a re-run.

    company-activity rollback --date 2025-11-23
    company-activity rollback --date 2025-11-23 --staging   # its staging rows too

Deletes the date's analytics rows (with --staging its staging rows too), records the
rollback in ops.rollbacks, and marks the date as not completed, so the next
`company-activity run` runs it again (docs/rollback.md). A date that no load, run or row
names is refused (exit 2): it is most likely mistyped.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date
from company_activity.model.rollback import check_date_has_history, rollback

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "rollback",
        help="delete a date's analytics rows (--staging: its staging rows too); docs/rollback.md",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--date", type=iso_date, required=True, help="date, YYYY-MM-DD")
    parser.add_argument(
        "--staging",
        action="store_true",
        help="also delete the date's staging rows and mark its loads rolled back",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.warehouse() as wh:
        check_date_has_history(wh, args.date)
        result = rollback(wh, args.date, ctx.run_id, ctx.started_at, staging=args.staging)
    # the CLI's own clock (the run's start), never the model's
    print(result.summary(after_today=args.date > ctx.started_at.date()))
    return 0
