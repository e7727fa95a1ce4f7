"""The usage-volume check: a day's staged rows against the trailing 7-day average."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from company_activity.model.validation import ERROR, INFO, WARNING, usage_drop_check
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2025, 4, 10)
TS = datetime(2025, 4, 11)


def _stage(wh: DuckDBWarehouse, day: date, rows: int) -> None:
    wh.insert_rows(
        "stg.product_usage",
        [
            "file_date",
            "company_id",
            "company_id_raw",
            "active_users",
            "events",
            "src_file_name",
            "src_line_number",
            "run_id",
            "loaded_at",
            "raw_json",
        ],
        [(day, f"c{n}", f"c{n}", 1, 1, "part", n, "r", TS, "{}") for n in range(1, rows + 1)],
    )
    wh.insert_rows(
        "ops.load_audits",
        [
            "run_id",
            "source",
            "file_date",
            "status",
            "files_read",
            "lines_read",
            "lines_staged",
            "lines_rejected",
            "bytes_read",
            "checksum",
            "started_at",
            "ended_at",
        ],
        [("r", "usage", day, "succeeded", 1, rows, rows, 0, 10, "x", TS, TS)],
    )


@pytest.fixture
def history(warehouse: DuckDBWarehouse) -> DuckDBWarehouse:
    for back in range(1, 8):
        _stage(warehouse, DAY - timedelta(days=back), 10)
    return warehouse


def test_a_drop_warns_or_fails_as_configured(history: DuckDBWarehouse) -> None:
    _stage(history, DAY, 4)
    warned = usage_drop_check(0.5, "warn")(history, DAY)
    assert (warned.passed, warned.severity) == (False, WARNING)
    assert warned.details == {"rows": 4, "trailing_average": 10.0, "threshold": 0.5}
    failed = usage_drop_check(0.5, "fail")(history, DAY)
    assert (failed.passed, failed.severity) == (False, ERROR)


def test_a_normal_day_passes(history: DuckDBWarehouse) -> None:
    _stage(history, DAY, 6)
    assert usage_drop_check(0.5, "fail")(history, DAY).passed


def test_no_history_is_informational(warehouse: DuckDBWarehouse) -> None:
    _stage(warehouse, DAY, 3)
    check = usage_drop_check(0.5, "fail")(warehouse, DAY)
    assert (check.passed, check.severity) == (True, INFO)


@pytest.mark.parametrize(
    ("action", "shown"), [("warn", "WARN usage_volume"), ("fail", "FAIL usage_volume")]
)
def test_validate_command_runs_the_same_check(
    history: DuckDBWarehouse, tmp_path: Path, action: str, shown: str
) -> None:
    _stage(history, DAY, 2)
    history.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQL_", "USAGE_"))}
    env.update(DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"), USAGE_DROP_ACTION=action)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "company_activity",
            "--env-file",
            os.devnull,
            "validate",
            "--date",
            DAY.isoformat(),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert shown in result.stdout, result.stdout + result.stderr
