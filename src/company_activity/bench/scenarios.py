"""The performance benchmark: the pipeline at a chosen scale, its stages, and their ceilings.

Three scenarios, each in a fresh spawned process (so each peak RSS is its own), each on its own
DuckDB file and local raw zone under a work folder:

- long: a backfill of `days` dates for `companies` companies (runner's range path, the
  generator as page source: no HTTP), then the next day's daily run; on that day, the stages
  alone against their ceilings (DuckDB read_json of the same part files, a bare window query,
  plain requests over the same loopback pages), and a full recompute of the analytics table.
- short: the same companies with only `history` days loaded, then the same next day's run:
  how the daily cost grows with the history kept; then the stray-date figure (a daily merge
  before, during and after a stray date and its rollback: bench/straydate.py).
- wide: one day for `wide_companies` companies end to end, over the loopback mock API.

The reference points are in bench/references.py, the targets and the report in
bench/report.py. Every ratio the targets are written in is measured in one run, so they hold
on a noisy machine. docs/performance.md has the figures and how to read them.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from company_activity.bench import references
from company_activity.bench.report import FULL, BenchReport, Scale, machine, targets
from company_activity.bench.straydate import stray_date_figure
from company_activity.bench.workspace import (
    Workspace,
    api_config,
    checkpoint,
    count_rows,
    in_child,
    peak_rss_mb,
    run_pipeline,
    timer,
    write_crm,
)
from company_activity.dates import date_range, utc_now
from company_activity.ingest.api_client import ApiClient
from company_activity.ingest.fetch import PageSource
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.mock.source import GeneratorSource
from company_activity.pipeline import names as steps

FIRST_DAY = mock_data.EPOCH  # the backfill's first date
DAILY_RUNS = 3  # consecutive daily runs after each backfill (the ratio compares medians)


# --- the run -----------------------------------------------------------------------------------


def run_bench(
    scale: Scale,
    workdir: Path | None = None,
    keep: bool = False,
    progress: Callable[[str], None] = lambda _message: None,
) -> BenchReport:
    """Run the three scenarios (each in its own process) and compute the targets."""
    scale.check()
    started_at = utc_now()
    clock = time.perf_counter()
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="company-activity-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    scenarios: dict[str, dict[str, Any]] = {}
    try:
        for name, fn in (
            ("long", scenario_long),
            ("short", scenario_short),
            ("wide", scenario_wide),
        ):
            folder = root / name
            if folder.exists():
                shutil.rmtree(folder)
            progress(f"scenario {name} ...")
            scenarios[name] = in_child(fn, folder, scale)
            progress(f"scenario {name} done")
    finally:
        if not keep and workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    report = BenchReport(
        scale=asdict(scale),
        machine=machine(),
        started_at=started_at.isoformat(),
        seconds=time.perf_counter() - clock,
        scenarios=scenarios,
    )
    report.targets = targets(
        report,
        full=scale.companies >= FULL.companies
        and scale.days >= FULL.days
        and scale.wide_companies >= FULL.wide_companies,
    )
    return report


def _daily(
    env: Workspace, scale: Scale, day: date, source: PageSource, out: dict[str, Any]
) -> None:
    """One daily run in this process (the wide scenario: no backfill before it)."""
    write_crm(env, [day], scale.companies, scale.seed)
    total, seconds = _timed_run(env, source, day)
    _daily_figures(out, [day], [total], [seconds])


def _daily_runs(
    env: Workspace, scale: Scale, first: date, out: dict[str, Any]
) -> tuple[Workspace, date]:
    """DAILY_RUNS consecutive daily runs after a backfill, each in a fresh process as the
    schedule starts one (`company-activity run --date D`), on the warehouse the backfill left.

    Run in the backfill's own process instead, the long scenario's days paid for its leftovers
    (a year's worth of DuckDB and Python state): its merge took 1.6-1.8 s against 1.46 s in a
    fresh process. Returns the reopened environment and the last day.
    """
    days = [first + timedelta(days=k) for k in range(DAILY_RUNS)]
    write_crm(env, days, scale.companies, scale.seed)
    env.wh.close()  # one process at a time may open a DuckDB file
    runs = [in_child(_daily_run, env.folder, scale, day) for day in days]
    _daily_figures(out, days, [total for total, _ in runs], [steps_ for _, steps_ in runs])
    return Workspace.create(env.folder), days[-1]


def _daily_run(folder: Path, scale: Scale, day: date) -> tuple[float, dict[str, float]]:
    """One daily run in this process: its seconds, and each step's."""
    env = Workspace.create(folder)
    try:
        return _timed_run(env, GeneratorSource(scale.seed, scale.companies), day)
    finally:
        env.wh.close()


def _timed_run(env: Workspace, source: PageSource, day: date) -> tuple[float, dict[str, float]]:
    """The pipeline for one date: its seconds, and each step's."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    run_pipeline(env, source, [day], seconds)
    return time.perf_counter() - started, seconds


def _daily_figures(
    out: dict[str, Any],
    days: list[date],
    totals: list[float],
    per_run_steps: list[dict[str, float]],
) -> None:
    """The median daily run overall and per step (one run of a couple of seconds on this
    shared machine moves by a third from run to run)."""
    out["daily_run"] = {
        "seconds": round(statistics.median(totals), 4),
        "date": days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}",
        "runs": [round(t, 4) for t in totals],
    }
    for name in steps.STEP_NAMES:
        values = [run[name] for run in per_run_steps if name in run]
        if values:
            out[f"daily.{name}"] = {"seconds": round(statistics.median(values), 4)}


def scenario_long(folder: Path, scale: Scale) -> dict[str, Any]:
    env = Workspace.create(folder)
    stages: dict[str, Any] = {}
    ceilings: dict[str, Any] = {}
    days = date_range(FIRST_DAY, FIRST_DAY + timedelta(days=scale.days - 1))
    next_day = days[-1] + timedelta(days=1)
    source = GeneratorSource(scale.seed, scale.companies)
    crm_seconds = write_crm(env, days, scale.companies, scale.seed)
    backfill_steps: dict[str, float] = {}
    with timer(stages, "backfill", dates=len(days), source="generator (no HTTP)"):
        run_pipeline(env, source, days, backfill_steps)
        checkpoint(env)
    stages["backfill"]["crm_files_written_before_s"] = crm_seconds
    stages["backfill"]["steps"] = {name: round(sec, 2) for name, sec in backfill_steps.items()}
    backfill_rss = peak_rss_mb()
    stages["backfill"]["analytics_rows"] = count_rows(env, "analytics.company_activity_daily")
    stages["backfill"]["usage_rows"] = count_rows(env, "stg.product_usage")
    env, last = _daily_runs(env, scale, next_day, stages)
    loads = references.load_figures(env, last)
    stages["staging_load"], ceilings["load_read_json"], ceilings["load_raw_floor"] = loads
    ceilings["window_query"] = references.window_ceiling(env, last)
    fetches = references.fetch_figures(env, scale, last)
    stages["fetch_loopback"], ceilings["client_requests"] = fetches
    with timer(stages, "full_recompute", dates=(last - days[0]).days + 1):
        references.full_recompute(env, days[0], last)
    ceilings["backfill_floor"] = references.backfill_floor(
        env, scale, next_day, len(days), stages, ceilings
    )
    env.wh.close()
    return {
        "stages": stages,
        "ceilings": ceilings,
        "backfill_peak_rss_mb": backfill_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def scenario_short(folder: Path, scale: Scale) -> dict[str, Any]:
    env = Workspace.create(folder)
    stages: dict[str, Any] = {}
    last = FIRST_DAY + timedelta(days=scale.days - 1)
    days = date_range(last - timedelta(days=scale.history - 1), last)
    source = GeneratorSource(scale.seed, scale.companies)
    write_crm(env, days, scale.companies, scale.seed)
    with timer(stages, "backfill", dates=len(days), source="generator (no HTTP)"):
        run_pipeline(env, source, days)
        checkpoint(env)
    env, daily_last = _daily_runs(env, scale, last + timedelta(days=1), stages)
    stages["stray_date"] = stray_date_figure(env, scale.companies, scale.seed, daily_last)
    env.wh.close()
    return {"stages": stages, "peak_rss_mb": peak_rss_mb()}


def scenario_wide(folder: Path, scale: Scale) -> dict[str, Any]:
    env = Workspace.create(folder)
    stages: dict[str, Any] = {}
    day = FIRST_DAY + timedelta(days=scale.days)
    mock = MockApiConfig(seed=scale.seed, companies=scale.wide_companies)
    wide = Scale(scale.wide_companies, scale.days, scale.history, scale.wide_companies, scale.seed)
    with MockApiServer(mock) as server, ApiClient(api_config(env, server, mock)) as client:
        _daily(env, wide, day, client, stages)
    stages["daily_run"]["source"] = "mock API over loopback HTTP"
    stages["daily_run"]["usage_rows"] = count_rows(env, "stg.product_usage")
    env.wh.close()
    return {"stages": stages, "peak_rss_mb": peak_rss_mb()}
