"""`company-activity load-crm --date D [--file PATH]`: stage a CRM snapshot.

    company-activity load-crm --date 2025-11-23
    company-activity load-crm --file exports/crm_companies_2025-11-23.csv   # date from the name

Reads `{CRM_BLOB_PATH}crm_companies_D.csv` from the raw zone, or a local file with --file (its
date from --date, else from a YYYY-MM-DD in its name, else from its file_date column when every
record gives the same date). The CRM_* settings say how the export is written. Replaces the
date's rows in stg.crm_companies and its CRM rows in stg.quarantine in one transaction, and
prints what it read, staged and rejected.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.cliargs import add_allow_future, iso_date, refuse_future
from company_activity.errors import ConfigError
from company_activity.staging import (
    CrmFormat,
    load_crm,
    snapshot_date_from_column,
    snapshot_date_from_name,
)
from company_activity.storage import open_store

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "load-crm",
        help="stage a CRM snapshot CSV into stg.crm_companies (replaces that date)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--date", type=iso_date, help="snapshot date, YYYY-MM-DD")
    parser.add_argument(
        "--file", type=Path, help="a local CSV instead of the raw zone's file for --date"
    )
    add_allow_future(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    fmt = CrmFormat.from_settings(ctx.settings)
    day = args.date
    if day is None and args.file is not None:
        day = snapshot_date_from_name(args.file.name) or snapshot_date_from_column(args.file, fmt)
    if day is None:
        raise ConfigError(
            "give the snapshot date with --date YYYY-MM-DD (with --file, a name such as "
            "crm_companies_2025-11-23.csv, or one date in a file_date column, gives it too)."
        )
    refuse_future([day], args.allow_future, ctx.started_at.date())
    store = open_store(ctx.settings)
    with ctx.warehouse() as wh:
        result = load_crm(
            wh,
            store,
            day,
            crm_blob_path=ctx.settings.crm_blob_path,
            run_id=ctx.run_id,
            file=args.file,
            fmt=fmt,
        )
    print(result.summary())
    return 0
