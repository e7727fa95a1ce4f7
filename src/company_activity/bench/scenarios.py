"""The performance benchmark: the pipeline at a chosen scale, its stages, and their ceilings.

Three scenarios, each in a fresh spawned process (so each peak RSS is its own), each on its own
DuckDB file and local raw zone under a work folder:

- long: a backfill of `days` dates for `companies` companies (runner's range path, the
  generator as page source: no HTTP), then the next day's daily run; on that day, the stages
  alone against their ceilings (DuckDB read_json of the same part files, a bare window query,
  plain requests over the same loopback pages), and a full recompute of the analytics table.
- short: the same companies with only `history` days loaded, then the same next day's run:
  how the daily cost grows with the history kept.
- wide: one day for `wide_companies` companies end to end, over the loopback mock API.

Every ratio the targets are written in is measured in one run, so they hold on a noisy
machine. docs/performance.md has the figures and how to read them.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import requests

from company_activity.dates import date_range, utc_now
from company_activity.errors import ConfigError, TerminalError
from company_activity.ingest.api_client import ApiClient, ApiConfig, FetchStats
from company_activity.ingest.fetch import PageSource, fetch_day
from company_activity.ingest.rawzone import crm_file_name, crm_location, read_manifest
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.mock.source import GeneratorSource
from company_activity.model import merge as model
from company_activity.pipeline import names as steps
from company_activity.pipeline.runctx import new_run_id
from company_activity.pipeline.runner import PipelineRunner
from company_activity.pipeline.steps import (
    StepContext,
    build_range_steps,
    build_steps,
    prepare_validation,
)
from company_activity.settings import Settings, load_settings
from company_activity.staging.usage import load_usage
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from company_activity.warehouse.schema import COMPANY_ACTIVITY_METRICS

SEED = 42
_T = TypeVar("_T")
FIRST_DAY = mock_data.EPOCH  # the backfill's first date
LOAD_REPEATS = 5  # staging loads of one day, and as many of each reference load
DAILY_RUNS = 3  # consecutive daily runs after each backfill (the ratio compares medians)
FLOOR_SAMPLE_DATES = 5  # dates generated to time the page source for the backfill floor
FETCH_DAYS = 5  # days fetched for the loopback and client-ceiling figures (steadier than one)
RUN_ID = "bench"


@dataclass(frozen=True)
class Scale:
    """How big the benchmark runs."""

    companies: int = 20_000
    days: int = 365  # backfill length (the long history)
    history: int = 30  # the short history, for the daily-cost ratio
    wide_companies: int = 100_000  # the one-day run
    seed: int = SEED

    def check(self) -> None:
        if min(self.companies, self.wide_companies) < 1:
            raise ConfigError("--companies and --wide-companies must be at least 1")
        if not 1 <= self.history <= self.days:
            raise ConfigError("--history must be between 1 and --days")


FULL = Scale()
QUICK = Scale(companies=2_000, days=45, history=10, wide_companies=10_000)


@dataclass(frozen=True)
class Target:
    """One target of issue 8: a measured value against its limit."""

    name: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool = False
    at_full_scale_only: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        verdict = "met" if self.met else "MISSED"
        if self.at_full_scale_only:
            verdict += " (target is for the full scale)"
        return (
            f"{self.name:<58} {self.value:>9.2f} {sign} {self.limit:<6g} {self.unit:<8} {verdict}"
        )


@dataclass
class BenchReport:
    """Everything one benchmark run measured."""

    scale: dict[str, int]
    machine: dict[str, Any]
    started_at: str
    seconds: float
    scenarios: dict[str, dict[str, Any]]
    targets: list[Target] = field(default_factory=list)

    def to_json(self) -> str:
        body = asdict(self)
        body["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return json.dumps(body, indent=2, sort_keys=True, default=str)

    def table_lines(self) -> list[str]:
        lines = [f"benchmark: {self.scale} on {self.machine['cpus']} CPU(s), {self.seconds:.0f} s"]
        for name, scenario in self.scenarios.items():
            lines.append(f"-- {name}: peak RSS {scenario['peak_rss_mb']:.0f} MB")
            for stage, value in scenario["stages"].items():
                lines.append(f"   {stage:<44} {value['seconds']:>9.3f} s  {_extra(value)}")
            for ceiling, value in scenario.get("ceilings", {}).items():
                lines.append(
                    f"   ceiling: {ceiling:<35} {value['seconds']:>9.3f} s  {_extra(value)}"
                )
        lines.append("-- targets")
        lines.extend("   " + t.line() for t in self.targets)
        return lines


def _extra(value: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in value.items() if k != "seconds")


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
            scenarios[name] = _in_child(fn, folder, scale)
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


def _in_child(fn: Callable[..., _T], *args: Any) -> _T:
    # spawn: a fresh interpreter, so the peak RSS is this scenario's alone.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def machine() -> dict[str, Any]:
    return {
        "duckdb_memory_limit": load_settings(
            environ=_caller_settings(), dotenv_path=None
        ).duckdb_memory_limit,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "memory_gb": _memory_gb(),
    }


def _caller_settings() -> dict[str, str]:
    """The one setting taken from the caller: the memory limit trades peak RSS for time."""
    limit = os.environ.get("DUCKDB_MEMORY_LIMIT")
    return {"DUCKDB_MEMORY_LIMIT": limit} if limit else {}


def _memory_gb() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return round(pages / 2**30, 1)


def targets(report: BenchReport, full: bool) -> list[Target]:
    """The targets of issue 8 from the measured figures."""
    long = report.scenarios["long"]
    short = report.scenarios["short"]
    wide = report.scenarios["wide"]
    stages, ceilings = long["stages"], long["ceilings"]
    return [
        Target(
            "staging load of a day / load ceiling (read_json)",
            stages["staging_load"]["seconds"] / ceilings["load_read_json"]["seconds"],
            2.0,
            "x",
        ),
        Target(
            "fetch+write pages/s over loopback / client ceiling",
            stages["fetch_loopback"]["pages_per_s"] / ceilings["client_requests"]["pages_per_s"],
            0.6,
            "x",
            higher_is_better=True,
        ),
        Target(
            "analytics merge of one day / window ceiling",
            stages["daily.merge_analytics"]["seconds"] / ceilings["window_query"]["seconds"],
            2.0,
            "x",
        ),
        Target(
            f"daily run, {report.scale['days']}d history / {report.scale['history']}d history",
            stages["daily_run"]["seconds"] / short["stages"]["daily_run"]["seconds"],
            1.5,
            "x",
        ),
        Target(
            "backfill end to end (generator source), wall",
            stages["backfill"]["seconds"],
            60.0,
            "s",
            at_full_scale_only=not full,
        ),
        Target(
            "backfill peak RSS",
            long["backfill_peak_rss_mb"],
            1024.0,
            "MB",
            at_full_scale_only=not full,
        ),
        Target(
            "one wide day end to end (loopback API), wall",
            wide["stages"]["daily_run"]["seconds"],
            15.0,
            "s",
            at_full_scale_only=not full,
        ),
    ]


# --- scenarios (run in child processes) --------------------------------------------------------


@dataclass
class _Env:
    """One scenario's warehouse, raw zone and settings."""

    folder: Path
    settings: Settings
    wh: DuckDBWarehouse
    store: LocalFolderStore

    @classmethod
    def create(cls, folder: Path) -> _Env:
        folder.mkdir(parents=True, exist_ok=True)
        environ = {
            "DUCKDB_PATH": str(folder / "warehouse.duckdb"),
            "LOCAL_BLOB_DIR": str(folder / "blob"),
            **_caller_settings(),
        }
        settings = load_settings(environ=environ, dotenv_path=None)
        wh = DuckDBWarehouse(settings.duckdb_path, settings.duckdb_memory_limit)
        migrate(wh, utc_now())
        return cls(folder, settings, wh, LocalFolderStore(settings.local_blob_dir))


@contextmanager
def _timer(into: dict[str, Any], name: str, **extra: Any) -> Iterator[dict[str, Any]]:
    entry: dict[str, Any] = dict(extra)
    started = time.perf_counter()
    yield entry
    entry["seconds"] = round(time.perf_counter() - started, 4)
    into[name] = entry


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _write_crm(env: _Env, days: list[date], companies: int, seed: int) -> float:
    """The CRM exports for the days: the pipeline's input, written before any timing."""
    started = time.perf_counter()
    for day in days:
        mock_data.write_crm_csv(env.store, env.settings.crm_blob_path, seed, companies, day)
    return round(time.perf_counter() - started, 4)


def _run(
    env: _Env,
    source: PageSource,
    days: list[date],
    step_seconds: dict[str, float] | None = None,
) -> None:
    """The pipeline over days (the runner's range path when there are enough of them)."""
    run_id = new_run_id()  # every run needs its own (ops.pipeline_runs)
    ctx = StepContext(env.wh, env.store, env.settings, source, run_id, utc_now)
    step_fns = build_steps(ctx)
    range_fns = build_range_steps(ctx)
    prepare: Callable[[Sequence[date]], None] = prepare_validation(ctx)
    if step_seconds is not None:
        step_fns = {name: _timed(fn, name, step_seconds) for name, fn in step_fns.items()}
        range_fns = {name: _timed(fn, name, step_seconds) for name, fn in range_fns.items()}
        prepare = _timed(prepare, steps.VALIDATE, step_seconds)  # a chunk's validation
    runner = PipelineRunner(
        env.wh,
        run_id,
        step_fns,
        lambda _message: True,
        utc_now,
        max_attempts=1,
        range_steps=range_fns,
        prepare_validation=prepare,
    )
    result = runner.run(days, "bench", force=True)
    if not result.ok:
        failed = result.failed
        assert failed is not None  # noqa: S101
        raise TerminalError(
            f"bench run failed on {failed.day} in {failed.failing_step}: {failed.error}"
        )


def _checkpoint(env: _Env) -> None:
    """Write the backfill's log into the file, as closing the warehouse at the end of a run does.

    Part of the backfill's time; without it the next day's run would pay for it wherever
    DuckDB's next automatic checkpoint fell, and the daily figures would measure the backfill.
    """
    env.wh.execute_native("CHECKPOINT")


def _timed(fn: Callable[..., Any], name: str, into: dict[str, float]) -> Any:
    """The step (per date or per range) with its seconds added to into[name]."""

    def timed(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - started

    return timed


def _daily(env: _Env, scale: Scale, day: date, source: PageSource, out: dict[str, Any]) -> None:
    """One daily run in this process (the wide scenario: no backfill before it)."""
    _write_crm(env, [day], scale.companies, scale.seed)
    total, seconds = _timed_run(env, source, day)
    _daily_figures(out, [day], [total], [seconds])


def _daily_runs(env: _Env, scale: Scale, first: date, out: dict[str, Any]) -> tuple[_Env, date]:
    """DAILY_RUNS consecutive daily runs after a backfill, each in a fresh process as the
    schedule starts one (`company-activity run --date D`), on the warehouse the backfill left.

    Run in the backfill's own process instead, the long scenario's days paid for its leftovers
    (a year's worth of DuckDB and Python state): its merge took 1.6-1.8 s against 1.46 s in a
    fresh process. Returns the reopened environment and the last day.
    """
    days = [first + timedelta(days=k) for k in range(DAILY_RUNS)]
    _write_crm(env, days, scale.companies, scale.seed)
    env.wh.close()  # one process at a time may open a DuckDB file
    runs = [_in_child(_daily_run, env.folder, scale, day) for day in days]
    _daily_figures(out, days, [total for total, _ in runs], [steps_ for _, steps_ in runs])
    return _Env.create(env.folder), days[-1]


def _daily_run(folder: Path, scale: Scale, day: date) -> tuple[float, dict[str, float]]:
    """One daily run in this process: its seconds, and each step's."""
    env = _Env.create(folder)
    try:
        return _timed_run(env, GeneratorSource(scale.seed, scale.companies), day)
    finally:
        env.wh.close()


def _timed_run(env: _Env, source: PageSource, day: date) -> tuple[float, dict[str, float]]:
    """The pipeline for one date: its seconds, and each step's."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    _run(env, source, [day], seconds)
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
    env = _Env.create(folder)
    stages: dict[str, Any] = {}
    ceilings: dict[str, Any] = {}
    days = date_range(FIRST_DAY, FIRST_DAY + timedelta(days=scale.days - 1))
    next_day = days[-1] + timedelta(days=1)
    source = GeneratorSource(scale.seed, scale.companies)
    crm_seconds = _write_crm(env, days, scale.companies, scale.seed)
    backfill_steps: dict[str, float] = {}
    with _timer(stages, "backfill", dates=len(days), source="generator (no HTTP)"):
        _run(env, source, days, backfill_steps)
        _checkpoint(env)
    stages["backfill"]["crm_files_written_before_s"] = crm_seconds
    stages["backfill"]["steps"] = {name: round(sec, 2) for name, sec in backfill_steps.items()}
    backfill_rss = _peak_rss_mb()
    stages["backfill"]["analytics_rows"] = _count(env, "analytics.company_activity_daily")
    stages["backfill"]["usage_rows"] = _count(env, "stg.product_usage")
    env, last = _daily_runs(env, scale, next_day, stages)
    stages["staging_load"], ceilings["load_read_json"], ceilings["load_raw_floor"] = _load_figures(
        env, last
    )
    ceilings["window_query"] = _window_ceiling(env, last)
    stages["fetch_loopback"], ceilings["client_requests"] = _fetch_figures(env, scale, last)
    with _timer(stages, "full_recompute", dates=(last - days[0]).days + 1):
        _full_recompute(env, days[0], last)
    ceilings["backfill_floor"] = _backfill_floor(env, scale, next_day, len(days), stages, ceilings)
    env.wh.close()
    return {
        "stages": stages,
        "ceilings": ceilings,
        "backfill_peak_rss_mb": backfill_rss,
        "peak_rss_mb": _peak_rss_mb(),
    }


def scenario_short(folder: Path, scale: Scale) -> dict[str, Any]:
    env = _Env.create(folder)
    stages: dict[str, Any] = {}
    last = FIRST_DAY + timedelta(days=scale.days - 1)
    days = date_range(last - timedelta(days=scale.history - 1), last)
    source = GeneratorSource(scale.seed, scale.companies)
    _write_crm(env, days, scale.companies, scale.seed)
    with _timer(stages, "backfill", dates=len(days), source="generator (no HTTP)"):
        _run(env, source, days)
        _checkpoint(env)
    env, _last = _daily_runs(env, scale, last + timedelta(days=1), stages)
    env.wh.close()
    return {"stages": stages, "peak_rss_mb": _peak_rss_mb()}


def scenario_wide(folder: Path, scale: Scale) -> dict[str, Any]:
    env = _Env.create(folder)
    stages: dict[str, Any] = {}
    day = FIRST_DAY + timedelta(days=scale.days)
    mock = MockApiConfig(seed=scale.seed, companies=scale.wide_companies)
    wide = Scale(scale.wide_companies, scale.days, scale.history, scale.wide_companies, scale.seed)
    with MockApiServer(mock) as server, ApiClient(_api_config(env, server, mock)) as client:
        _daily(env, wide, day, client, stages)
    stages["daily_run"]["source"] = "mock API over loopback HTTP"
    stages["daily_run"]["usage_rows"] = _count(env, "stg.product_usage")
    env.wh.close()
    return {"stages": stages, "peak_rss_mb": _peak_rss_mb()}


def _api_config(env: _Env, server: MockApiServer, mock: MockApiConfig) -> ApiConfig:
    return ApiConfig.from_settings(env.settings.replace(api_url=server.url, api_key=mock.api_key))


def _count(env: _Env, table: str) -> int:
    return int(env.wh.scalar(f"SELECT COUNT(*) FROM {table}") or 0)


# --- ceilings ----------------------------------------------------------------------------------


_BARE_USAGE_COLUMNS = (
    "company_id VARCHAR, active_users INTEGER, events BIGINT, ts TIMESTAMP, date DATE"
)
_READ_JSON_COLUMNS = (
    "{company_id: 'VARCHAR', active_users: 'INTEGER', events: 'BIGINT', ts: 'TIMESTAMP', "
    "date: 'DATE'}"
)
# The ceiling: DuckDB's own reader into a bare typed table.
_CEILING_LOAD = (
    "INSERT INTO usage_bare SELECT * FROM read_json($paths, format = 'newline_delimited', "
    f"columns = {_READ_JSON_COLUMNS})"
)
# The same read keeping each line's text too, as staging must (provenance): every line read
# once as text and parsed once; no rules, reasons, quarantine, replace or audit.
_RAW_FLOOR_LOAD = (
    "INSERT INTO usage_raw SELECT j.company_id, j.active_users, j.events, j.ts, j.date, line "
    'FROM (SELECT line, json_transform(line, \'{"company_id": "VARCHAR", '
    '"active_users": "INTEGER", "events": "BIGINT", "ts": "TIMESTAMP", '
    '"date": "DATE"}\') AS j FROM read_csv($paths, columns = {line: \'VARCHAR\'}, '
    "header = false, delim = chr(1), quote = '', escape = '', auto_detect = false))"
)


def _load_figures(env: _Env, day: date) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The staging load of `day` against the ceiling and the raw floor, LOAD_REPEATS each.

    Taken in turns (staging, ceiling, floor) and reported as medians: one measurement of a
    20 ms statement on a shared 2-core machine is mostly noise. The staging reloads replace
    the date's rows, so they leave the warehouse as it was.
    """
    container = env.settings.blob_container
    manifest = read_manifest(env.store, container, day)
    if manifest is None:  # pragma: no cover - the daily run just wrote it
        raise TerminalError(f"no manifest for {day}")
    paths = [str(Path(env.settings.local_blob_dir) / container / p.path) for p in manifest.parts]
    staging: list[float] = []
    ceiling: list[float] = []
    floor: list[float] = []
    rows = 0
    for attempt in range(LOAD_REPEATS):
        started = time.perf_counter()
        result = load_usage(env.wh, env.store, day, container=container, run_id=RUN_ID)
        staging.append(time.perf_counter() - started)
        con = duckdb.connect(str(env.folder / f"ceiling-{attempt}.duckdb"))
        try:
            con.execute(f"CREATE TABLE usage_bare ({_BARE_USAGE_COLUMNS})")
            con.execute(f"CREATE TABLE usage_raw ({_BARE_USAGE_COLUMNS}, raw VARCHAR)")
            for statement, into in ((_CEILING_LOAD, ceiling), (_RAW_FLOOR_LOAD, floor)):
                started = time.perf_counter()
                con.execute(statement, {"paths": paths})
                into.append(time.perf_counter() - started)
            counted = con.execute("SELECT COUNT(*) FROM usage_bare").fetchone()
            rows = int(counted[0]) if counted else 0
        finally:
            con.close()
    lines = result.lines_read

    def figure(seconds: list[float]) -> dict[str, Any]:
        return {
            "seconds": round(statistics.median(seconds), 4),
            "runs": [round(s, 4) for s in seconds],
        }

    return (
        {**figure(staging), "lines": lines, "files": len(paths)},
        {**figure(ceiling), "rows": rows, "files": len(paths)},
        {**figure(floor), "rows": rows},
    )


_CRM_TYPED_FLOOR = (
    "INSERT INTO crm_bare SELECT * FROM read_csv($path, header = true, delim = ',', "
    "quote = '\"', escape = '\"', auto_detect = false, columns = "
    "{company_id: 'VARCHAR', company_name: 'VARCHAR', country: 'VARCHAR', "
    "industry_tag: 'VARCHAR', last_contact_at: 'TIMESTAMP'})"
)
_CRM_LINES_FLOOR = (
    "INSERT INTO crm_lines SELECT line FROM read_csv($path, columns = {line: 'VARCHAR'}, "
    "header = false, skip = 1, delim = chr(1), quote = '', escape = '', auto_detect = false)"
)


def _backfill_floor(
    env: _Env,
    scale: Scale,
    day: date,
    dates: int,
    stages: dict[str, Any],
    ceilings: dict[str, Any],
) -> dict[str, Any]:
    """What the backfill's work costs at the least, per date times dates, plus one recompute.

    Per date: generating the day's usage lines (the page source the backfill reads), the
    usage raw floor (read and parse once, keep the text: measured above), and the same for
    the CRM export (DuckDB's CSV reader into a typed table, plus its lines as text). Then one
    set-based merge of everything (the full recompute above). No rules, quarantine, audit,
    dimension merge, validation or run log: a bound no implementation of the contract beats.
    """
    source = GeneratorSource(scale.seed, scale.companies)
    sample = [day + timedelta(days=k) for k in range(FLOOR_SAMPLE_DATES)]
    started = time.perf_counter()
    for sample_day in sample:
        for _page in source.pages(sample_day, FetchStats()):
            pass
    generate = (time.perf_counter() - started) / len(sample)
    container, prefix = crm_location(env.settings.crm_blob_path)
    path = str(Path(env.settings.local_blob_dir) / container / prefix / crm_file_name(day))
    crm: list[float] = []
    con = duckdb.connect(str(env.folder / "crm-floor.duckdb"))
    try:
        for _attempt in range(LOAD_REPEATS):
            con.execute(
                "CREATE OR REPLACE TABLE crm_bare (company_id VARCHAR, company_name VARCHAR, "
                "country VARCHAR, industry_tag VARCHAR, last_contact_at TIMESTAMP)"
            )
            con.execute("CREATE OR REPLACE TABLE crm_lines (line VARCHAR)")
            started = time.perf_counter()
            con.execute(_CRM_TYPED_FLOOR, {"path": path})
            con.execute(_CRM_LINES_FLOOR, {"path": path})
            crm.append(time.perf_counter() - started)
    finally:
        con.close()
    crm_floor = statistics.median(crm)
    usage_floor = float(ceilings["load_raw_floor"]["seconds"])
    recompute = float(stages["full_recompute"]["seconds"])
    per_date = generate + usage_floor + crm_floor
    return {
        "seconds": round(dates * per_date + recompute, 2),
        "dates": dates,
        "generate_per_date_s": round(generate, 4),
        "usage_raw_floor_per_date_s": round(usage_floor, 4),
        "crm_raw_floor_per_date_s": round(crm_floor, 4),
        "full_recompute_s": recompute,
    }


# The same rolling sums as populate_analytics.sql over the same lookback, for one day: no
# MERGE, no flags, no carried rows, no bookkeeping.
_WINDOW_CEILING = """
CREATE OR REPLACE TEMP TABLE window_ceiling AS
WITH day_usage AS (
    SELECT company_id, file_date, max(active_users) AS active_users, max(events) AS events
    FROM stg.product_usage
    WHERE file_date BETWEEN $first AND $day
    GROUP BY company_id, file_date
),
grid AS (
    SELECT co.company_id, cal.calendar_date,
        COALESCE(u.active_users, 0) AS active_users, COALESCE(u.events, 0) AS events
    FROM dim.companies AS co
    CROSS JOIN dim.calendar AS cal
    LEFT JOIN day_usage AS u
        ON u.company_id = co.company_id AND u.file_date = cal.calendar_date
    WHERE cal.calendar_date BETWEEN $first AND $day
),
w AS (
    SELECT company_id, calendar_date,
        SUM(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS users_7d,
        SUM(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 13 PRECEDING AND 7 PRECEDING) AS users_previous_7d,
        SUM(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS users_30d,
        MAX(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS peak_users_30d,
        SUM(events) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS events_30d,
        SUM(events) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 13 PRECEDING AND CURRENT ROW) AS events_14d,
        SUM(events) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 43 PRECEDING AND 14 PRECEDING) AS events_prior_30d,
        SUM(CASE WHEN active_users > 0 THEN 1 ELSE 0 END) OVER (PARTITION BY company_id
            ORDER BY calendar_date ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS active_days_30d
    FROM grid
)
SELECT * FROM w WHERE calendar_date = $day
"""


def _window_ceiling(env: _Env, day: date) -> dict[str, Any]:
    first = day - timedelta(days=model.LOOKBACK_DAYS)
    started = time.perf_counter()
    env.wh.con.execute(_WINDOW_CEILING, {"first": first, "day": day})
    seconds = time.perf_counter() - started
    rows = env.wh.con.execute("SELECT COUNT(*) FROM window_ceiling").fetchone()
    env.wh.con.execute("DROP TABLE window_ceiling")
    return {"seconds": round(seconds, 4), "rows": rows[0] if rows else 0}


def _fetch_figures(env: _Env, scale: Scale, after: date) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pages per second: the client writing the raw zone vs plain requests parsing JSON only.

    One untimed day warms both (the mock server's company table, the connections); then the
    two take turns day by day, so a noisy moment on this shared machine weighs on both alike.
    """
    warm_up, *days = [after + timedelta(days=k) for k in range(1, FETCH_DAYS + 2)]
    mock = MockApiConfig(seed=scale.seed, companies=scale.companies)
    pages = records = plain_pages = 0
    fetch_seconds = plain_seconds = 0.0
    with MockApiServer(mock) as server, ApiClient(_api_config(env, server, mock)) as client:
        for day in (warm_up, *days):
            started = time.perf_counter()
            result = fetch_day(
                client,
                env.store,
                env.settings.blob_container,
                day,
                run_id=RUN_ID,
                fetched_at=utc_now().isoformat(),
            )
            seconds = time.perf_counter() - started
            day_pages, day_plain_seconds = _plain_client(client.config, [day])
            if day == warm_up:
                continue
            pages += result.pages
            records += result.records
            fetch_seconds += seconds
            plain_pages += day_pages
            plain_seconds += day_plain_seconds
    fetch = {
        "seconds": round(fetch_seconds, 4),
        "pages": pages,
        "records": records,
        "pages_per_s": round(pages / fetch_seconds, 1),
    }
    plain = {
        "seconds": round(plain_seconds, 4),
        "pages": plain_pages,
        "pages_per_s": round(plain_pages / plain_seconds, 1),
    }
    return fetch, plain


def _plain_client(config: ApiConfig, days: list[date]) -> tuple[int, float]:
    """The same pages with a plain requests session: JSON parse only, nothing written."""
    pages = 0
    started = time.perf_counter()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {config.api_key}"
        for day in days:
            page: int | str | None = 1
            while page is not None:
                response = session.get(
                    config.url,
                    params={"date": day.isoformat(), "page": page, "per_page": config.page_size},
                    timeout=(config.connect_timeout, config.read_timeout),
                )
                response.raise_for_status()
                page = response.json()["next_page"]
                pages += 1
    return pages, time.perf_counter() - started


def _full_recompute(env: _Env, first: date, last: date) -> None:
    """Rebuild the whole analytics table from staging, as the seed did every day."""
    with env.wh.transaction():
        env.wh.execute(f"DELETE FROM {COMPANY_ACTIVITY_METRICS.name}")
        model.merge_analytics(env.wh, first, last, RUN_ID, utc_now())


def write_report(report: BenchReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json() + "\n", encoding="utf-8")
