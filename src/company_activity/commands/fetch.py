"""`company-activity fetch`: product usage for a date range into the raw zone, one partition a date.

    company-activity fetch --start 2025-11-23                     # from API_URL
    company-activity fetch --mock --start 2025-11-01 --end 2025-11-07 --crm
    company-activity fetch --sample --start 2025-01-06              # the saved response

Sources: the API (API_URL, API_KEY), or with --mock no network at all: the built-in generator
(deterministic, any date; --companies, --seed), or with --sample the saved API response in
samples/product_api_sample.json (or the file given).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date, reject_together, require
from company_activity.dates import date_range
from company_activity.errors import ConfigError
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.ingest.fetch import DayResult, PageSource, SampleSource, fetch_days
from company_activity.ingest.rawzone import DEFAULT_RECORDS_PER_PART
from company_activity.mock import data as mock_data
from company_activity.mock.source import DEFAULT_MOCK_COMPANIES, DEFAULT_MOCK_SEED, GeneratorSource
from company_activity.pipeline.progress import Progress
from company_activity.storage import open_store

if TYPE_CHECKING:
    from company_activity.cli import Context

DEFAULT_SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "product_api_sample.json"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared with scripts/fetch_product_usage.py (the seed's interface)."""
    parser.add_argument("--start", required=True, type=iso_date, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", type=iso_date, help="last date, YYYY-MM-DD (default: --start)")
    parser.add_argument(
        "--mock",
        action="store_true",
        help="no network: generate usage with the built-in generator (see --sample)",
    )
    parser.add_argument(
        "--sample",
        nargs="?",
        const=DEFAULT_SAMPLE,
        type=Path,
        metavar="PATH",
        help="with --mock (implied): use a saved API response instead of the generator "
        "(default file: samples/product_api_sample.json)",
    )
    parser.add_argument(
        "--companies",
        type=int,
        help=f"generator: number of companies (default {DEFAULT_MOCK_COMPANIES})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help=f"generator: random seed (default {DEFAULT_MOCK_SEED})",
    )
    parser.add_argument(
        "--crm",
        action="store_true",
        help="generator: also write each date's matching CRM CSV to CRM_BLOB_PATH",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        metavar="K",
        help="fetch K dates at a time (pays off when the API has latency; default 1)",
    )
    parser.add_argument(
        "--records-per-part",
        type=_positive,
        default=DEFAULT_RECORDS_PER_PART,
        metavar="N",
        help=f"start a new part file every N records (default {DEFAULT_RECORDS_PER_PART})",
    )
    parser.add_argument("--gzip", action="store_true", help="gzip the part files (.ndjson.gz)")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "fetch",
        help="fetch product usage for a date range into the raw zone",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from company_activity.cli import EXIT_TERMINAL, EXIT_TRANSIENT

    settings = ctx.settings
    days = date_range(args.start, args.end or args.start)
    if args.crm and (args.sample is not None or not args.mock):
        raise ConfigError("--crm works with the generator only: use it with --mock, not --sample")
    generator = "they shape the built-in generator"
    reject_together(args, "sample", "companies", "seed", why=f"{generator}, not a saved response")
    require(args, "mock", "companies", "seed", why=generator)
    companies = DEFAULT_MOCK_COMPANIES if args.companies is None else args.companies
    seed = DEFAULT_MOCK_SEED if args.seed is None else args.seed
    store = open_store(settings)
    with ExitStack() as stack:
        source: PageSource
        if args.sample is not None:
            source = SampleSource(args.sample)
        elif args.mock:
            source = GeneratorSource(seed, companies, settings.api_page_size)
        else:
            client = ApiClient(ApiConfig.from_settings(settings), pool_size=args.concurrency)
            source = stack.enter_context(client)
        if args.crm:
            for day in days:
                where = mock_data.write_crm_csv(store, settings.crm_blob_path, seed, companies, day)
                print(f"{day}  crm     {where}")
        progress = Progress("fetch", len(days), sys.stderr)
        try:
            results = fetch_days(
                days,
                source,
                store,
                settings.blob_container,
                run_id=ctx.run_id,
                fetched_at=ctx.started_at.isoformat(),
                concurrency=args.concurrency,
                records_per_part=args.records_per_part,
                gzipped=args.gzip,
                on_result=lambda result: progress.advance(result.ok),
            )
        finally:
            progress.close()
    for result in results:
        print(summary_line(result))
    failed = [r for r in results if not r.ok]
    where = store.url(settings.blob_container, "")
    if not failed:
        print(f"fetched {len(results)} date(s) into {where}")
        return 0
    names = ", ".join(r.day.isoformat() for r in failed)
    print(
        f"{len(failed)} of {len(results)} date(s) failed: {names}. Fix the cause above and "
        "re-run those dates (a re-run replaces a date; the others are complete).",
        file=sys.stderr,
    )
    return EXIT_TRANSIENT if all(r.transient for r in failed) else EXIT_TERMINAL


def summary_line(result: DayResult) -> str:
    """One line per date: records, pages, retries, bytes, seconds (and the error, if any)."""
    status = "ok" if result.ok else "FAILED"
    line = (
        f"{result.day}  {status:<6}  records={result.records}  pages={result.pages}  "
        f"retries={result.retries}  bytes={result.bytes}  seconds={result.seconds:.2f}"
    )
    return line if result.ok else f"{line}  error: {result.error}"
