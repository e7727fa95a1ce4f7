"""One benchmark scenario's workspace: its warehouse, raw zone and settings, and the pipeline
run over them with each step timed.

Shared by the scenarios (bench/scenarios.py) and the reference points (bench/references.py).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

from company_activity.bench.report import caller_settings
from company_activity.dates import utc_now
from company_activity.errors import TerminalError
from company_activity.ingest.api_client import ApiConfig
from company_activity.ingest.fetch import PageSource
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
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
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate

_T = TypeVar("_T")
RUN_ID = "bench"  # the run id of the benchmark's own loads (reference points, recompute)


def in_child(fn: Callable[..., _T], *args: Any) -> _T:
    # spawn: a fresh interpreter, so the peak RSS is this scenario's alone.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


@dataclass
class Workspace:
    """One scenario's warehouse, raw zone and settings."""

    folder: Path
    settings: Settings
    wh: DuckDBWarehouse
    store: LocalFolderStore

    @classmethod
    def create(cls, folder: Path) -> Workspace:
        folder.mkdir(parents=True, exist_ok=True)
        environ = {
            "DUCKDB_PATH": str(folder / "warehouse.duckdb"),
            "LOCAL_BLOB_DIR": str(folder / "blob"),
            **caller_settings(),
        }
        settings = load_settings(environ=environ, dotenv_path=None)
        wh = DuckDBWarehouse(settings.duckdb_path, settings.duckdb_memory_limit)
        migrate(wh, utc_now())
        return cls(folder, settings, wh, LocalFolderStore(settings.local_blob_dir))


@contextmanager
def timer(into: dict[str, Any], name: str, **extra: Any) -> Iterator[dict[str, Any]]:
    entry: dict[str, Any] = dict(extra)
    started = time.perf_counter()
    yield entry
    entry["seconds"] = round(time.perf_counter() - started, 4)
    into[name] = entry


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_crm(env: Workspace, days: list[date], companies: int, seed: int) -> float:
    """The CRM exports for the days: the pipeline's input, written before any timing."""
    started = time.perf_counter()
    for day in days:
        mock_data.write_crm_csv(env.store, env.settings.crm_blob_path, seed, companies, day)
    return round(time.perf_counter() - started, 4)


def run_pipeline(
    env: Workspace,
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
        step_fns = {name: timed(fn, name, step_seconds) for name, fn in step_fns.items()}
        range_fns = {name: timed(fn, name, step_seconds) for name, fn in range_fns.items()}
        prepare = timed(prepare, steps.VALIDATE, step_seconds)  # a chunk's validation
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


def checkpoint(env: Workspace) -> None:
    """Write the backfill's log into the file, as closing the warehouse at the end of a run does.

    Part of the backfill's time; without it the next day's run would pay for it wherever
    DuckDB's next automatic checkpoint fell, and the daily figures would measure the backfill.
    """
    env.wh.execute_native("CHECKPOINT")


def timed(fn: Callable[..., Any], name: str, into: dict[str, float]) -> Any:
    """The step (per date or per range) with its seconds added to into[name]."""

    def wrapped(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - started

    return wrapped


def api_config(env: Workspace, server: MockApiServer, mock: MockApiConfig) -> ApiConfig:
    return ApiConfig.from_settings(env.settings.replace(api_url=server.url, api_key=mock.api_key))


def count_rows(env: Workspace, table: str) -> int:
    return int(env.wh.scalar(f"SELECT COUNT(*) FROM {table}") or 0)
