"""`company-activity report`: summarise a date range and write a Markdown report with a chart.

    company-activity report --start 2025-11-01 --end 2025-11-30 --out .local/report

Prints rows per layer for the range, rejects, data-quality flags and the companies most at
churn risk, and writes report.md with an activity.png chart to --out. Reads the warehouse
only (opened read-only).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date
from company_activity.errors import ConfigError
from company_activity.pipeline.report import build_report, render_text, write_markdown

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "report",
        help="summarise the analytics for a date range (console + Markdown with a chart)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--start", required=True, type=iso_date, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=iso_date, help="last date, YYYY-MM-DD")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(".local/report"),
        help="folder for report.md and activity.png",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.end < args.start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    with ctx.warehouse(read_only=True) as wh:
        report = build_report(wh, args.start, args.end)
    try:  # first: a reader that stops early (| head) keeps it
        path = write_markdown(report, args.out)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the report in {args.out}: {exc.strerror or exc}; "
            "pass --out a folder you can write"
        ) from None
    print(render_text(report))
    print(f"\nReport: {path} (chart: {path.parent / 'activity.png'})")
    return 0
