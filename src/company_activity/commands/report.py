"""`company-activity report`: summarise a date range and write a Markdown report with a chart."""

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
        "report", help="summarise the analytics for a date range (console + Markdown with a chart)"
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
    with ctx.warehouse() as wh:
        report = build_report(wh, args.start, args.end)
    print(render_text(report))
    path = write_markdown(report, args.out)
    print(f"\nReport: {path} (chart: {path.parent / 'activity.png'})")
    return 0
