"""`company-activity validate --date D`: check a date's output; non-zero exit on a hard failure.

    company-activity validate --date 2025-11-23

The same checks as the pipeline's validate step: unique keys, a complete company x day
grid, flags, counts per layer. Exit 2 on a hard failure. Reads the warehouse only (opened
read-only).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date
from company_activity.model.validation import usage_drop_check, validate

if TYPE_CHECKING:
    from company_activity.cli import Context

EXIT_FAILED = 2  # like every other "fix something first" exit


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "validate",
        help="check a date's analytics rows: unique keys, complete grid, flags, counts per layer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--date", type=iso_date, required=True, help="date, YYYY-MM-DD")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.warehouse(read_only=True) as wh:
        # The same checks as the pipeline's validate step, so ADF and the local runner agree.
        drop_check = usage_drop_check(
            ctx.settings.usage_drop_threshold, ctx.settings.usage_drop_action
        )
        result = validate(wh, args.date, extra_checks=(drop_check,))
    print("\n".join(result.summary_lines()))
    return 0 if result.ok else EXIT_FAILED
