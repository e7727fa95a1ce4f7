"""The whole pipeline against the mock API, a local webhook and real DuckDB files.

Faults (throttling, 5xx, a step failing once, a killed process) must not change the result:
the analytics table equals a clean run's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity.dates import date_range
from company_activity.errors import TransientError
from company_activity.ingest import api_client
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.pipeline import names as steps
from company_activity.pipeline import notify
from company_activity.pipeline.runner import PipelineRunner, StepOutcome
from company_activity.pipeline.steps import StepContext, build_steps
from company_activity.settings import Settings
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from tests.webhook_server import webhook_server

ROOT = Path(__file__).resolve().parents[1]
DAYS = date_range(date(2025, 5, 1), date(2025, 5, 5))
COMPANIES = 40
SEED = 7
LINEAGE = {"run_id", "created_at", "updated_at"}


def _clock() -> datetime:
    return datetime(2025, 6, 1, 3, 0, 0)


def snapshot(wh: DuckDBWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    """The business content of the model's tables, without lineage columns."""
    result = {}
    for table, key in (
        ("analytics.company_activity_daily", "company_id, activity_date"),
        ("dim.companies", "company_id"),
        ("stg.product_usage", "file_date, company_id, src_line_number"),
        ("stg.crm_companies", "snapshot_date, src_line_number"),
        ("stg.quarantine", "source, file_date, src_line_number"),
    ):
        columns = [
            c for c in wh.table_columns(table) if c not in LINEAGE | {"loaded_at", "src_file_name"}
        ]
        result[table] = wh.query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}")
    return result


@pytest.fixture(autouse=True)
def _no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_client, "sleep", lambda seconds: None)


@pytest.fixture
def mock_server() -> Iterator[MockApiServer]:
    with MockApiServer(MockApiConfig(seed=SEED, companies=COMPANIES)) as server:
        yield server


def _pipeline(
    tmp_path: Path, name: str, server: MockApiServer, settings: Settings, webhook: str | None = None
) -> tuple[DuckDBWarehouse, PipelineRunner, dict[str, Any]]:
    wh = DuckDBWarehouse(tmp_path / f"{name}.duckdb")
    migrate(wh, _clock())
    store = LocalFolderStore(tmp_path / f"{name}-blob")
    for day in DAYS:
        mock_data.write_crm_csv(store, settings.crm_blob_path, SEED, COMPANIES, day)
    config = ApiConfig(url=server.url, api_key=server.api.config.api_key)
    client = ApiClient(config)
    run_steps = build_steps(StepContext(wh, store, settings, client, f"run-{name}", _clock))
    runner = PipelineRunner(
        wh,
        f"run-{name}",
        run_steps,
        lambda m: notify.send(m, webhook),
        _clock,
        max_attempts=3,
        sleep=lambda s: None,
    )
    return wh, runner, run_steps


def test_faults_do_not_change_the_result(
    tmp_path: Path, mock_server: MockApiServer, settings: Settings
) -> None:
    clean_wh, clean, _ = _pipeline(tmp_path, "clean", mock_server, settings)
    assert clean.run(DAYS, "run clean").ok
    expected = snapshot(clean_wh)
    assert len(expected["analytics.company_activity_daily"]) >= COMPANIES * len(DAYS) - COMPANIES

    mock_server.api.inject("429", times=2, day=DAYS[1], retry_after="1")
    mock_server.api.inject("503", times=1, day=DAYS[2])
    with webhook_server() as hook:
        wh, runner, run_steps = _pipeline(tmp_path, "faulty", mock_server, settings, hook.url)
        merge = run_steps[steps.MERGE_ANALYTICS]
        failures = iter([TransientError("database is locked (simulated)")])

        def merge_failing_once(day: date) -> StepOutcome:
            if day == DAYS[3]:
                error = next(failures, None)
                if error is not None:
                    raise error
            return merge(day)

        run_steps[steps.MERGE_ANALYTICS] = merge_failing_once
        result = runner.run(DAYS, "run faulty")
    assert result.ok
    assert snapshot(wh) == expected

    attempts = dict(
        ((r[0], r[1]), r[2])
        for r in wh.query("SELECT run_date, step_name, attempts FROM ops.step_runs")
    )
    assert attempts[(DAYS[3], steps.MERGE_ANALYTICS)] == 2
    assert attempts[(DAYS[1], steps.FETCH_USAGE)] == 1  # the client retried inside the step
    fetch_details = wh.query(
        "SELECT run_date, details FROM ops.step_runs WHERE step_name = 'fetch_usage' "
        "ORDER BY run_date"
    )
    assert '"retries": 2' in fetch_details[1][1] and '"retries": 1' in fetch_details[2][1]
    statuses = [r for r in mock_server.api.requests if r.day == DAYS[1].isoformat()]
    assert [r.status for r in statuses][-3:] == [429, 429, 200]
    assert [m["status"] for m in hook.received] == ["succeeded"]
    assert hook.received[0]["run_id"] == "run-faulty"
    assert wh.query("SELECT status FROM ops.pipeline_runs") == [("succeeded",)]


def test_a_failing_date_notifies_and_a_rerun_finishes(
    tmp_path: Path, mock_server: MockApiServer, settings: Settings
) -> None:
    mock_server.api.inject("500", times=None, day=DAYS[2])  # every attempt of that date fails
    with webhook_server() as hook:
        wh, runner, _ = _pipeline(tmp_path, "flaky", mock_server, settings, hook.url)
        first = runner.run(DAYS, "run")
    assert first.failed is not None and first.failed.day == DAYS[2]
    assert first.failed.failing_step == steps.FETCH_USAGE and first.failed.transient
    assert [m["failing_step"] for m in hook.received] == [steps.FETCH_USAGE]
    assert "HTTP 500" in hook.received[0]["error"]
    mock_server.api.clear_faults()
    again = PipelineRunner(
        wh, "run-again", runner.steps, lambda m: True, _clock, sleep=lambda s: None
    ).run(DAYS, "run")
    assert [d.status for d in again.dates] == [
        "skipped",
        "skipped",
        "succeeded",
        "succeeded",
        "succeeded",
    ]
    clean_wh, clean, _ = _pipeline(tmp_path, "clean", mock_server, settings)
    clean.run(DAYS, "run")
    assert snapshot(wh) == snapshot(clean_wh)


def _cli_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "BLOB_", "SQL_"))}
    env.update(
        DUCKDB_PATH=str(folder / "w.duckdb"),
        LOCAL_BLOB_DIR=str(folder / "blob"),
        PYTHONPATH=str(ROOT),
    )
    return env


def _cli_run(folder: Path, *extra: str) -> subprocess.Popen[str]:
    folder.mkdir(exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "company_activity",
        "--env-file",
        os.devnull,
        "run",
        "--mock",
        "--start",
        DAYS[0].isoformat(),
        "--end",
        DAYS[-1].isoformat(),
        "--companies",
        str(COMPANIES),
        "--seed",
        str(SEED),
        *extra,
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=_cli_env(folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _init(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "company_activity",
            "--env-file",
            os.devnull,
            "init-db",
        ],
        cwd=ROOT,
        env=_cli_env(folder),
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, sig: int) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for folder in (reference, killed):
        _init(folder)
    done = _cli_run(reference)
    assert done.wait(timeout=300) == 0

    # slow=1.0 delays every API answer, so the signal lands in the middle of a date.
    victim = _cli_run(killed, "--faults", "slow=1.0")
    assert victim.stdout is not None
    first_line = victim.stdout.readline()  # the mock API line
    second_line = victim.stdout.readline()  # the first date's summary
    assert first_line and second_line.startswith(DAYS[0].isoformat()), second_line
    time.sleep(0.3)
    victim.send_signal(sig)
    code = victim.wait(timeout=60)
    assert code != 0
    assert _cli_run(killed).wait(timeout=300) == 0

    ref_wh, killed_wh = (
        DuckDBWarehouse(reference / "w.duckdb"),
        DuckDBWarehouse(killed / "w.duckdb"),
    )
    try:
        assert snapshot(killed_wh) == snapshot(ref_wh)
        if sig == signal.SIGTERM:
            assert ("interrupted",) in killed_wh.query("SELECT status FROM ops.pipeline_runs")
    finally:
        ref_wh.close()
        killed_wh.close()
