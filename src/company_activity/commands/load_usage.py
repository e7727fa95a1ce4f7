"""`company-activity load-usage --start D --end D`: stage product usage, date by date.

    company-activity load-usage --start 2025-11-01 --end 2025-11-07
    company-activity load-usage --path exports/usage/

Each date's partition is read through its manifest in the raw zone (BLOB_CONTAINER), and its
rows in stg.product_usage and its usage rows in stg.quarantine are replaced in one transaction.
With --path DIR instead, the NDJSON files of a local folder are loaded, each under the date in
its path (a date=YYYY-MM-DD folder or a YYYY-MM-DD in its name). Dates are independent: one
failing does not stop the others, and the exit status says whether any failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.cliargs import (
    add_allow_future,
    iso_date,
    refuse_future,
    reject_together,
    require,
)
from company_activity.errors import ConfigError, PipelineError, TerminalError, TransientError
from company_activity.staging import LoadResult, load_usage, load_usage_files
from company_activity.staging.folder import dated_files, manifest_partitions
from company_activity.storage import open_store
from company_activity.storage.local import LocalFolderStore

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "load-usage",
        help="stage product-usage NDJSON into stg.product_usage (replaces each date)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--start", type=iso_date, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", type=iso_date, help="last date, YYYY-MM-DD (default: --start)")
    parser.add_argument(
        "--path", type=Path, help="a local folder of NDJSON files instead of the raw zone"
    )
    add_allow_future(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    reject_together(args, "path", "start", "end", why="give --start D [--end D] or --path DIR")
    require(args, "start", "end")
    if (args.path is None) == (args.start is None):
        raise ConfigError("give either --start D [--end D] or --path DIR.")
    with ctx.warehouse() as wh:
        loads: list[tuple[date, Callable[[], LoadResult]]]
        if args.path is not None:
            partitions = manifest_partitions(args.path)
            loads = [
                (
                    day,
                    partial(
                        load_usage,
                        wh,
                        LocalFolderStore(folder.parent.parent),
                        day,
                        container=folder.parent.name,
                        run_id=ctx.run_id,
                    ),
                )
                for day, folder in partitions.items()
            ]
            loose = dated_files(args.path, skip=set(partitions.values()))
            overlap = sorted(set(loose) & set(partitions))
            if overlap:
                raise ConfigError(
                    f"{overlap[0]} has both a manifest partition and loose files under "
                    f"{args.path}; pass --path a folder that holds one of them."
                )
            loads += [
                (day, partial(load_usage_files, wh, day, files, run_id=ctx.run_id))
                for day, files in loose.items()
            ]
            loads.sort(key=lambda load: load[0])
        else:
            store = open_store(ctx.settings)
            container = ctx.settings.blob_container
            end = args.end or args.start
            if end < args.start:
                raise ConfigError(f"--end {end} is before --start {args.start}.")
            days = [args.start + timedelta(n) for n in range((end - args.start).days + 1)]
            loads = [
                (day, partial(load_usage, wh, store, day, container=container, run_id=ctx.run_id))
                for day in days
            ]
        refuse_future((day for day, _ in loads), args.allow_future, ctx.started_at.date())
        failed: list[tuple[date, PipelineError]] = []
        for day, load in loads:
            try:
                print(load().summary())
            except PipelineError as exc:
                print(f"{day} usage: FAILED: {exc}", file=sys.stderr)
                failed.append((day, exc))
    if not failed:
        return 0
    names = ", ".join(str(day) for day, _ in failed)
    message = (
        f"{len(failed)} of {len(loads)} date(s) failed: {names}. Fix the cause above and re-run "
        "those dates (a re-run replaces a date; the others are complete)."
    )
    if all(isinstance(exc, TransientError) for _, exc in failed):
        raise TransientError(message)
    raise TerminalError(message)
