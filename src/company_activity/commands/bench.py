"""`company-activity bench`: the performance benchmark (docs/performance.md).

    company-activity bench --quick    # under a minute
    company-activity bench            # the targets' scale: 20,000 x 365 and 100,000 x 1
    company-activity bench --companies 5000 --days 90 --history 30 --out bench.json

Each scenario runs in a fresh process on its own DuckDB file and raw-zone folder under a
temporary folder (or --workdir). It prints a table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.bench.report import FULL, QUICK, write_report
from company_activity.bench.scenarios import run_bench

if TYPE_CHECKING:
    from company_activity.cli import Context

DEFAULT_OUT = Path(".local/bench/bench.json")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the pipeline at scale against its performance targets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a small preset ({QUICK.companies} x {QUICK.days} days, "
        f"{QUICK.wide_companies} wide) that runs in under a minute",
    )
    parser.add_argument("--companies", type=int, help=f"companies (default {FULL.companies})")
    parser.add_argument("--days", type=int, help=f"days of backfill (default {FULL.days})")
    parser.add_argument(
        "--history", type=int, help=f"the short history, in days (default {FULL.history})"
    )
    parser.add_argument(
        "--wide-companies",
        type=int,
        help=f"companies in the one-day run (default {FULL.wide_companies})",
    )
    parser.add_argument("--seed", type=int, help="generator seed (default 42)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON file to write (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the scenarios' warehouses and raw zones here"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    scale = QUICK if args.quick else FULL
    chosen = {
        name: getattr(args, name)
        for name in ("companies", "days", "history", "wide_companies", "seed")
        if getattr(args, name) is not None
    }
    scale = replace(scale, **chosen)
    report = run_bench(
        scale, workdir=args.workdir, progress=lambda m: print(m, file=sys.stderr, flush=True)
    )
    for line in report.table_lines():
        print(line)
    write_report(report, args.out)
    print(f"figures written to {args.out}")
    return 0
