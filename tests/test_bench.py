"""The benchmark command at a tiny scale, and the runner's range (backfill) path it relies on.

No timings are asserted: the benchmark's figures belong to docs/performance.md, not to tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from company_activity.cli import main
from company_activity.dates import date_range
from company_activity.errors import ConfigError, TransientError
from company_activity.mock import data as mock_data
from company_activity.mock.source import GeneratorSource
from company_activity.pipeline import names as steps
from company_activity.pipeline.runner import (
    RANGE_CHUNK_DATES,
    RANGE_MIN_DATES,
    DateResult,
    PipelineRunner,
)
from company_activity.pipeline.steps import (
    StepContext,
    build_range_steps,
    build_steps,
    prepare_validation,
)
from company_activity.settings import Settings
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate

SEED = 11
COMPANIES = 30
DAYS = date_range(date(2025, 3, 1), date(2025, 3, 1) + timedelta(days=RANGE_MIN_DATES + 1))
LINEAGE = {"run_id", "created_at", "updated_at"}


def test_bench_command_writes_every_stage_and_ceiling(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code = main(
        [
            "--env-file",
            os.devnull,
            "bench",
            "--companies",
            "25",
            "--days",
            str(RANGE_MIN_DATES + 1),
            "--history",
            "2",
            "--wide-companies",
            "40",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["scale"]["companies"] == 25
    assert report["machine"]["cpus"] >= 1
    long, short, wide = (report["scenarios"][name] for name in ("long", "short", "wide"))
    for stage in (
        "backfill",
        "daily_run",
        *(f"daily.{name}" for name in steps.STEP_NAMES if name != steps.NOTIFY),
        "fetch_loopback",
        "full_recompute",
        "staging_load",
    ):
        assert long["stages"][stage]["seconds"] >= 0, stage
    for ceiling in ("load_read_json", "load_raw_floor", "window_query", "client_requests"):
        assert long["ceilings"][ceiling]["seconds"] > 0, ceiling
    assert long["ceilings"]["load_read_json"]["rows"] > 0
    # The staging load and its references read the same lines, several times each.
    staging_load = long["stages"]["staging_load"]
    assert staging_load["lines"] == long["ceilings"]["load_read_json"]["rows"]
    assert long["ceilings"]["load_raw_floor"]["rows"] == staging_load["lines"]
    assert len(staging_load["runs"]) == len(long["ceilings"]["load_read_json"]["runs"]) > 1
    assert long["ceilings"]["client_requests"]["pages"] == long["stages"]["fetch_loopback"]["pages"]
    assert long["stages"]["backfill"]["analytics_rows"] > 0
    # Where the backfill's time went, step by step (the merges run over ranges).
    backfill_steps = long["stages"]["backfill"]["steps"]
    assert set(backfill_steps) == {s for s in steps.STEP_NAMES if s != steps.NOTIFY}
    assert sum(backfill_steps.values()) <= long["stages"]["backfill"]["seconds"]
    floor = long["ceilings"]["backfill_floor"]
    assert floor["dates"] == RANGE_MIN_DATES + 1
    assert floor["full_recompute_s"] == long["stages"]["full_recompute"]["seconds"]
    assert floor["seconds"] >= floor["full_recompute_s"] > 0
    # Per-date floors are rounded to 0.1 ms: at this tiny scale one can round to 0.
    assert floor["generate_per_date_s"] >= 0 and floor["crm_raw_floor_per_date_s"] >= 0
    assert short["stages"]["daily_run"]["seconds"] > 0
    # The stray-date figure: a daily merge before, with 2099-12-31 loaded, after its rollback.
    stray = short["stages"]["stray_date"]
    assert stray["stray_date"] == "2099-12-31"
    assert min(stray["merge_before_s"], stray["merge_after_rollback_s"]) > 0
    assert wide["stages"]["daily_run"]["usage_rows"] > 0
    for scenario in (long, short, wide):
        assert scenario["peak_rss_mb"] > 0
    assert long["backfill_peak_rss_mb"] > 0
    targets = report["targets"]
    assert len(targets) == 7
    for target in targets:
        assert {"name", "value", "limit", "met"} <= target.keys()
        assert target["at_full_scale_only"] in (True, False)


def test_bench_rejects_a_history_longer_than_the_backfill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--env-file", os.devnull, "bench", "--days", "5", "--history", "9"])
    assert code == 2
    assert "--history must be between 1 and --days" in capsys.readouterr().err


def _clock() -> datetime:
    return datetime(2025, 6, 1, 3, 0, 0)


def _backfill(
    folder: Path,
    settings: Settings,
    ranged: bool,
    chunk_dates: int = RANGE_CHUNK_DATES,
    done: Callable[[DuckDBWarehouse, DateResult], None] | None = None,
    prepare: Callable[[Sequence[date]], None] | None = None,
) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(folder / "w.duckdb")
    migrate(wh, _clock())
    store = LocalFolderStore(folder / "blob")
    settings = settings.replace(local_blob_dir=str(folder / "blob"))
    for day in DAYS:
        mock_data.write_crm_csv(store, settings.crm_blob_path, SEED, COMPANIES, day)
    source = GeneratorSource(SEED, COMPANIES)
    ctx = StepContext(wh, store, settings, source, f"run-{ranged}", _clock)
    runner = PipelineRunner(
        wh,
        f"run-{ranged}",
        build_steps(ctx),
        lambda _message: True,
        _clock,
        range_steps=build_range_steps(ctx) if ranged else None,
        range_chunk_dates=chunk_dates,
        prepare_validation=(prepare or prepare_validation(ctx)) if ranged else None,
        on_date_done=(lambda result: done(wh, result)) if done else None,
    )
    result = runner.run(DAYS, "test")
    assert result.ok
    assert [r.status for r in result.dates] == ["succeeded"] * len(DAYS)
    return wh


def _snapshot(wh: DuckDBWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table, key in (
        ("analytics.company_activity_daily", "company_id, activity_date"),
        ("dim.companies", "company_id"),
    ):
        columns = [c for c in wh.table_columns(table) if c not in LINEAGE]
        found[table] = wh.query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}")
    return found


def test_range_path_gives_the_tables_of_the_date_by_date_path(
    tmp_path: Path, settings: Settings
) -> None:
    by_date = _backfill(tmp_path / "by_date", settings, ranged=False)
    by_range = _backfill(tmp_path / "by_range", settings, ranged=True)
    expected = _snapshot(by_date)
    assert expected["analytics.company_activity_daily"]
    assert _snapshot(by_range) == expected
    # The run log still holds every step for every date, the merges marked with their range.
    logged = by_range.query(
        "SELECT step_name, COUNT(*), MIN(status), MAX(status) FROM ops.step_runs GROUP BY step_name"
    )
    assert {row[0]: row[1:] for row in logged} == {
        name: (len(DAYS), "succeeded", "succeeded")
        for name in steps.STEP_NAMES
        if name != steps.NOTIFY
    } | {steps.NOTIFY: (1, "succeeded", "succeeded")}
    details = by_range.scalar(
        "SELECT details FROM ops.step_runs WHERE step_name = 'merge_analytics' "
        "AND run_date = CAST(@d AS DATE)",
        {"d": DAYS[0]},
    )
    assert f"{DAYS[0]}..{DAYS[-1]}" in str(details)
    by_date.close()
    by_range.close()


def test_range_path_in_chunks_gives_the_same_tables_and_reports_each_chunk_as_it_ends(
    tmp_path: Path, settings: Settings
) -> None:
    by_date = _backfill(tmp_path / "by_date", settings, ranged=False)
    seen: list[tuple[date, int]] = []

    def record(wh: DuckDBWarehouse, result: DateResult) -> None:
        merged = wh.scalar(
            "SELECT COUNT(*) FROM ops.step_runs "
            "WHERE step_name = 'merge_analytics' AND status = 'succeeded'"
        )
        seen.append((result.day, int(merged or 0)))

    by_chunks = _backfill(tmp_path / "by_chunks", settings, True, chunk_dates=4, done=record)
    assert _snapshot(by_chunks) == _snapshot(by_date)
    # Validated a chunk at a time, each date's validate step logged what it logs alone.
    assert _validate_details(by_chunks) == _validate_details(by_date)
    logged = by_chunks.query(
        "SELECT DISTINCT CAST(details AS VARCHAR) FROM ops.step_runs "
        "WHERE step_name = 'merge_analytics'"
    )
    chunks = [DAYS[k : k + 4] for k in range(0, len(DAYS), 4)]
    assert len(logged) == len(chunks) == 3
    for chunk in chunks:
        assert any(f"{chunk[0]}..{chunk[-1]}" in str(row[0]) for row in logged), chunk
    # Each date is reported once its own chunk is merged, before the next chunk starts.
    assert [day for day, _ in seen] == DAYS
    assert [merged for _, merged in seen] == [
        min(len(DAYS), (k // 4 + 1) * 4) for k in range(len(DAYS))
    ]
    by_chunks.close()
    by_date.close()


def test_range_path_validates_date_by_date_when_validating_a_chunk_fails(
    tmp_path: Path, settings: Settings
) -> None:
    chunks: list[list[date]] = []

    def broken(days: Sequence[date]) -> None:
        chunks.append(list(days))
        raise TransientError("the warehouse went away for a moment")

    by_date = _backfill(tmp_path / "by_date", settings, ranged=False)
    by_chunks = _backfill(tmp_path / "by_chunks", settings, True, chunk_dates=4, prepare=broken)
    assert chunks == [DAYS[k : k + 4] for k in range(0, len(DAYS), 4)]
    assert _validate_details(by_chunks) == _validate_details(by_date)
    by_chunks.close()
    by_date.close()


def _validate_details(wh: DuckDBWarehouse) -> list[tuple[Any, ...]]:
    return wh.query(
        "SELECT run_date, status, CAST(details AS VARCHAR) FROM ops.step_runs "
        "WHERE step_name = 'validate' ORDER BY run_date"
    )


def test_range_path_stops_at_a_failed_load_and_merges_the_dates_before_it(
    tmp_path: Path, settings: Settings
) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    migrate(wh, _clock())
    store = LocalFolderStore(tmp_path / "blob")
    settings = settings.replace(local_blob_dir=str(tmp_path / "blob"))
    missing = DAYS[-2]
    for day in DAYS:
        if day != missing:
            mock_data.write_crm_csv(store, settings.crm_blob_path, SEED, COMPANIES, day)
    ctx = StepContext(wh, store, settings, GeneratorSource(SEED, COMPANIES), "r1", _clock)
    runner = PipelineRunner(
        wh, "r1", build_steps(ctx), lambda _m: True, _clock, range_steps=build_range_steps(ctx)
    )
    result = runner.run(DAYS, "test")
    failed = result.failed
    assert failed is not None and failed.day == missing
    assert failed.failing_step == steps.CHECK_CRM_FILE
    assert [r.status for r in result.dates] == ["succeeded"] * (len(DAYS) - 2) + ["failed"]
    merged = wh.scalar("SELECT MAX(activity_date) FROM analytics.company_activity_daily")
    assert merged == DAYS[-3]
    wh.close()


def test_duckdb_memory_limit_is_applied_and_spills_beside_the_file(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", "256MB")
    try:
        limit, temp = wh.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone() or ("", "")
    finally:
        wh.close()
    assert str(limit).startswith("244.1")  # DuckDB reports 256 MB in MiB
    assert Path(str(temp)) == tmp_path / "w.duckdb.tmp"


def test_duckdb_memory_limit_that_duckdb_rejects_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DUCKDB_MEMORY_LIMIT"):
        DuckDBWarehouse(tmp_path / "w.duckdb", "plenty")
