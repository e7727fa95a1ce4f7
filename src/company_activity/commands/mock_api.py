"""`company-activity mock-api`: serve the product-usage API locally, with faults on demand.

    company-activity mock-api --port 8080 --faults 429=0.05,503=0.02
    company-activity mock-api --crm-start 2025-11-01 --crm-end 2025-11-07 --no-serve

Also writes the generator's matching CRM CSVs into the raw zone (--crm-start/--crm-end), so a
demo needs no input files; --no-serve writes them and exits.
"""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from company_activity.cliargs import iso_date, require
from company_activity.dates import date_range
from company_activity.errors import ConfigError
from company_activity.mock import data as mock_data
from company_activity.mock.api import PAGINATIONS, MockApiConfig, MockApiServer
from company_activity.mock.faults import RATE_FAULTS, parse_fault_rates
from company_activity.mock.source import DEFAULT_MOCK_COMPANIES, DEFAULT_MOCK_SEED
from company_activity.redact import register_secret
from company_activity.storage import open_store

if TYPE_CHECKING:
    from company_activity.cli import Context

DEFAULT_PORT = 8080
DEFAULT_MOCK_KEY = "mock-api-key"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "mock-api",
        help="serve a local product-usage API with synthetic data and faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    parser.add_argument("--companies", type=int, default=DEFAULT_MOCK_COMPANIES)
    parser.add_argument("--seed", type=int, default=DEFAULT_MOCK_SEED)
    parser.add_argument(
        "--pagination",
        choices=PAGINATIONS,
        default="pages",
        help="next_page as page numbers or as opaque cursors",
    )
    parser.add_argument(
        "--faults",
        default="",
        metavar="SPEC",
        help="fault rates, e.g. 429=0.05,503=0.02,slow=0.1,truncate=0.01,duplicate=0.01,"
        f"case=0.01,malformed=0.005 (kinds: {', '.join(RATE_FAULTS)})",
    )
    parser.add_argument(
        "--retry-after",
        default="1",
        help="Retry-After sent with 429s: seconds or an HTTP date (default 1)",
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=0.5, help="delay of a 'slow' response (default 0.5)"
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"key the mock accepts (default: API_KEY, else {DEFAULT_MOCK_KEY!r})",
    )
    parser.add_argument("--crm-start", type=iso_date, help="write CRM CSVs from this date")
    parser.add_argument("--crm-end", type=iso_date, help="... to this date (default: --crm-start)")
    parser.add_argument(
        "--no-serve", action="store_true", help="only write the CRM CSVs, do not serve"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    settings = ctx.settings
    if args.crm_end and not args.crm_start:
        raise ConfigError("--crm-end needs --crm-start")
    require(args, "crm_start", "no_serve", why="without CRM files to write it would do nothing")
    if args.crm_start:
        store = open_store(settings)
        for day in date_range(args.crm_start, args.crm_end or args.crm_start):
            where = mock_data.write_crm_csv(
                store, settings.crm_blob_path, args.seed, args.companies, day
            )
            print(f"wrote {where}")
    if args.no_serve:
        return 0
    api_key = args.api_key or settings.api_key or DEFAULT_MOCK_KEY
    register_secret(api_key)
    config = MockApiConfig(
        seed=args.seed,
        companies=args.companies,
        api_key=api_key,
        auth_header=settings.api_auth_header,
        pagination=args.pagination,
        fault_rates=parse_fault_rates(args.faults),
        retry_after=args.retry_after or None,
        slow_seconds=args.slow_seconds,
    )
    server = MockApiServer(config, args.host, args.port)
    faults = args.faults or "none"
    key_from = "--api-key" if args.api_key else "API_KEY" if settings.api_key else "the default"
    print(
        f"mock API at {server.url} ({args.companies} companies, seed {args.seed}, "
        f"{args.pagination}, faults: {faults}; key from {key_from}). Point API_URL at it; "
        "Ctrl-C stops.",
        flush=True,
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stop as cleanly on TERM as on Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("mock API stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
