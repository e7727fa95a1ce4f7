"""`company-activity run`: the daily pipeline for a date or a range, resumable.

    company-activity run --date 2025-11-23
    company-activity run --start 2025-01-01 --end 2025-12-31        # a backfill
    company-activity run --mock --start 2025-11-01 --end 2025-11-30  # nothing outside this machine

With --mock the run starts the built-in mock API on loopback (with --faults switched on, if
given) and writes each date's CRM file from the same generator before the run.

A date whose data-quality check fails is not completed (the next run retries it) and the run
exits non-zero; warnings show on the date's line (WARN) and in the final count, and
--fail-on-warning makes them failures. One notification per run (NOTIFY_ON says which
outcomes), sent even when the warehouse stops working; an interrupt exits 130.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from datetime import date
from typing import TYPE_CHECKING

from company_activity.cliargs import (
    add_allow_future,
    iso_date,
    refuse_future,
    reject_together,
    require,
)
from company_activity.dates import date_range, utc_now
from company_activity.errors import PipelineError
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.mock.faults import parse_fault_rates
from company_activity.mock.source import DEFAULT_MOCK_COMPANIES, DEFAULT_MOCK_SEED
from company_activity.pipeline import interrupts, notify
from company_activity.pipeline.announce import Announcer
from company_activity.pipeline.names import PIPELINE_NAME
from company_activity.pipeline.progress import Progress
from company_activity.pipeline.runner import DateResult, PipelineRunner
from company_activity.pipeline.steps import (
    StepContext,
    build_range_steps,
    build_steps,
    prepare_validation,
)
from company_activity.redact import redact
from company_activity.storage import open_store

if TYPE_CHECKING:
    from company_activity.cli import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "run",
        help="run the daily pipeline for a date or a date range",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", type=iso_date, help="one date, YYYY-MM-DD")
    when.add_argument("--start", type=iso_date, help="first date of a range")
    parser.add_argument("--end", type=iso_date, help="last date of a range (default: --start)")
    parser.add_argument("--force", action="store_true", help="rerun dates already completed")
    add_allow_future(parser)
    parser.add_argument(
        "--mock", action="store_true", help="use the built-in mock API and CRM files"
    )
    parser.add_argument(
        "--companies",
        type=int,
        help=f"--mock: number of companies (default {DEFAULT_MOCK_COMPANIES})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        help=f"--mock: generator seed (default {DEFAULT_MOCK_SEED})",
    )
    parser.add_argument(
        "--faults",
        help="--mock: fault rates for the mock API, e.g. 429=0.1,503=0.05,malformed=0.01",
    )
    parser.add_argument(
        "--fail-on-warning",
        action="store_true",
        help="treat a data-quality warning as a failure (the date is not completed)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    start = args.date or args.start
    end = args.date or args.end or args.start
    days = date_range(start, end)
    reject_together(args, "date", "end", why="give --date D, or --start D1 --end D2")
    require(args, "mock", "companies", "seed", "faults", why="they shape the built-in mock API")
    refuse_future(days, args.allow_future, ctx.started_at.date())
    settings = ctx.settings
    announcer = Announcer(
        lambda message: notify.send(
            message,
            settings.notify_webhook_url,
            deadline=settings.http_deadline_seconds,
            attempts=settings.notify_max_attempts,
        ),
        settings.notify_on,
    )
    try:
        return _run(args, ctx, days, announcer)
    except BaseException as exc:
        # Stopped before the runner took over (or after it): still one notification, except
        # for an error the command reports itself before any work (no schema, a bad setting:
        # one line and exit 2, which the scheduler sees).
        interrupted = isinstance(exc, KeyboardInterrupt) or interrupts.requested()
        if isinstance(exc, PipelineError) and not interrupted:
            raise
        with interrupts.deferred():
            announcer.announce(
                notify.RunMessage(
                    pipeline=PIPELINE_NAME,
                    run_id=ctx.run_id,
                    status="interrupted" if interrupted else "failed",
                    start_date=min(days).isoformat(),
                    end_date=max(days).isoformat(),
                    error=interrupts.description() if interrupted else redact(exc),
                )
            )
        raise


def _run(args: argparse.Namespace, ctx: Context, days: list[date], announcer: Announcer) -> int:
    settings = ctx.settings
    companies = DEFAULT_MOCK_COMPANIES if args.companies is None else args.companies
    seed = DEFAULT_MOCK_SEED if args.seed is None else args.seed
    store = open_store(settings)
    with ExitStack() as stack:
        wh = stack.enter_context(ctx.warehouse())
        if args.mock:
            mock = MockApiConfig(
                seed=seed, companies=companies, fault_rates=parse_fault_rates(args.faults or "")
            )
            server = stack.enter_context(MockApiServer(mock))
            config = ApiConfig.from_settings(
                settings.replace(api_url=server.url, api_key=mock.api_key)
            )
            for day in days:
                mock_data.write_crm_csv(store, settings.crm_blob_path, seed, companies, day)
            print(
                f"mock API on {server.url} (faults: {args.faults or 'none'}); "
                f"CRM files written for {len(days)} date(s)"
            )
        else:
            config = ApiConfig.from_settings(settings)
        client = stack.enter_context(ApiClient(config))
        step_ctx = StepContext(wh, store, settings, client, ctx.run_id, utc_now)
        progress = Progress("run", len(days), sys.stderr)

        def date_done(result: DateResult) -> None:
            if progress.enabled:
                progress.stream.write("\r\033[K")  # clear the bar; advance() redraws it below
            print(result.summary_line(), flush=True)
            progress.advance(result.status != "failed")

        runner = PipelineRunner(
            wh,
            ctx.run_id,
            build_steps(step_ctx),
            announcer.notifier,  # the run's one notification goes through the announcer
            utc_now,
            max_attempts=settings.step_max_attempts,
            on_date_done=date_done,
            range_steps=build_range_steps(step_ctx),
            prepare_validation=prepare_validation(step_ctx),
            announcer=announcer,
            fail_on_warning=args.fail_on_warning,
        )
        command = " ".join(sys.argv[1:]) or "run"
        try:
            result = runner.run(days, command, force=args.force)
        finally:
            progress.close()
    failed = result.failed
    completed = sum(1 for d in result.dates if d.status == "succeeded")
    skipped = sum(1 for d in result.dates if d.status == "skipped")
    warned = sum(1 for d in result.dates if d.warnings)
    warnings = (
        f", {len(result.warnings)} warning(s) on {warned} date(s) (see the WARN lines)"
        if warned
        else ", no warnings"
    )
    if failed is None:
        print(f"run {ctx.run_id}: {completed} date(s) completed, {skipped} skipped{warnings}")
        return 0
    print(
        f"run {ctx.run_id} FAILED on {failed.day} in {failed.failing_step}: {failed.error}"
        f" ({completed} date(s) completed{warnings})\n"
        "Fix the cause and run the same command again: completed dates are skipped and "
        "nothing is duplicated.",
        file=sys.stderr,
    )
    from company_activity.cli import EXIT_TERMINAL, EXIT_TRANSIENT

    return EXIT_TRANSIENT if failed.transient else EXIT_TERMINAL
