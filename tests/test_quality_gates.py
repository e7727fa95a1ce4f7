"""Issue 13's cases: the data-quality checks gate a date, and what they found reaches people.

Each case runs the real command line (`company-activity run`, in process) against a real DuckDB
file, the mock API on loopback and a local webhook server, and asserts the exit code, the
date's summary line, the check results stored in ops.check_results and what the webhook got.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from company_activity.cli import main
from company_activity.dates import date_range
from company_activity.ingest import api_client
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from tests.webhook_server import WebhookRecorder, webhook_server

SEED, COMPANIES = 7, 40
BASELINE = date_range(date(2025, 5, 1), date(2025, 5, 4))
DAY = date(2025, 5, 5)
CRM_PATH = "raw/crm/"

Cli = Callable[..., tuple[int, str]]


@pytest.fixture(autouse=True)
def _no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_client, "sleep", lambda seconds: None)


@pytest.fixture
def api() -> Iterator[MockApiServer]:
    with MockApiServer(MockApiConfig(seed=SEED, companies=COMPANIES)) as server:
        yield server


@pytest.fixture
def hook() -> Iterator[WebhookRecorder]:
    with webhook_server() as recorder:
        yield recorder


@pytest.fixture
def cli(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    api: MockApiServer,
    hook: WebhookRecorder,
) -> Cli:
    """`company-activity ARGS` with the test's warehouse, raw zone, API and webhook; returns
    (exit code, stdout + stderr)."""
    env_file = tmp_path / "test.env"
    env_file.write_text("")
    base = {
        "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        "LOCAL_BLOB_DIR": str(tmp_path / "blob"),
        "API_URL": api.url,
        "API_KEY": api.api.config.api_key,
        "NOTIFY_WEBHOOK_URL": hook.url,
    }
    for name in ("BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "SQL_CONN_STR", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, **env: str) -> tuple[int, str]:
        for name, value in {**base, **env}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(["--env-file", str(env_file), *args])
        out = capsys.readouterr()
        return code, out.out + out.err

    assert run("init-db")[0] == 0
    return run


def _store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


def _write_crm(tmp_path: Path, *days: date) -> None:
    for day in days:
        mock_data.write_crm_csv(_store(tmp_path), CRM_PATH, SEED, COMPANIES, day)


def _checks(tmp_path: Path, day: date) -> dict[str, tuple[Any, ...]]:
    """name -> (outcome, measured value, threshold, message) of the date's latest run."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        rows = wh.query(
            "SELECT c.check_name, c.outcome, c.measured_value, c.threshold, c.message, c.run_id "
            "FROM ops.check_results AS c WHERE c.check_date = CAST(@d AS DATE) "
            "ORDER BY c.checked_at",
            {"d": day},
        )
    finally:
        wh.close()
    latest = rows[-1][5] if rows else None
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows if r[5] == latest}


def _line(output: str, day: date) -> str:
    return next(line for line in output.splitlines() if line.startswith(day.isoformat()))


def _baseline(cli: Cli, tmp_path: Path, hook: WebhookRecorder) -> None:
    _write_crm(tmp_path, *BASELINE, DAY)
    code, output = cli("run", "--start", str(BASELINE[0]), "--end", str(BASELINE[-1]))
    assert code == 0, output
    assert "4 date(s) completed, 0 skipped, no warnings" in output
    assert hook.received == []  # NOTIFY_ON=warnings (the default): a clean run is quiet


def test_an_empty_usage_day_fails_the_date_and_a_rerun_retries_it(
    cli: Cli, tmp_path: Path, api: MockApiServer, hook: WebhookRecorder
) -> None:
    _baseline(cli, tmp_path, hook)
    api.api.inject("empty", times=None, day=DAY)  # HTTP 200 {"items": [], "next_page": null}

    code, output = cli("run", "--date", str(DAY))

    assert code == 2, output
    line = _line(output, DAY)
    assert line.startswith(f"{DAY}  FAILED in load_usage: check failed: usage_rows: 0 usage rows")
    checks = _checks(tmp_path, DAY)
    assert checks["usage_rows"][:3] == ("fail", 0, 1)
    assert checks["usage_rejected"][0] == "pass"
    assert "usage_volume" not in checks  # the date stopped before its merge and validation
    [message] = hook.received
    assert message["status"] == "failed" and message["failing_step"] == "load_usage"
    assert message["failing_date"] == str(DAY) and "usage_rows" in message["error"]
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:  # nothing of the empty day reached the model
        assert (
            wh.scalar(
                "SELECT COUNT(*) FROM analytics.company_activity_metrics "
                "WHERE activity_date = CAST(@d AS DATE)",
                {"d": DAY},
            )
            == 0
        )
    finally:
        wh.close()

    # status: the coverage, the failed date with its check, a gap, the last run
    later = date(2025, 5, 7)
    _write_crm(tmp_path, later)
    assert cli("run", "--date", str(later))[0] == 0
    code, status = cli("status")
    assert code == 0, status
    assert f"coverage: {BASELINE[0]} .. {later}, 5 date(s) completed" in status
    assert f"    {DAY} .. {date(2025, 5, 6)}" in status  # the gap
    assert f"    {DAY} FAILED in load_usage: check failed: usage_rows: 0 usage rows" in status
    assert "dates with warnings: none" in status
    assert "last run: " in status and " SUCCEEDED (started " in status

    api.api.clear_faults()  # the API is fixed: the next run retries the date
    code, output = cli("run", "--start", str(BASELINE[0]), "--end", str(DAY))
    assert code == 0, output
    assert "1 date(s) completed, 4 skipped" in output
    assert "failed dates: none" in cli("status")[1]
    assert _checks(tmp_path, DAY)["usage_rows"][0] == "pass"


def test_empty_days_pass_when_the_setting_allows_them(
    cli: Cli, tmp_path: Path, api: MockApiServer, hook: WebhookRecorder
) -> None:
    _write_crm(tmp_path, DAY)
    api.api.inject("empty", times=None, day=DAY)
    code, output = cli("run", "--date", str(DAY), USAGE_MIN_ROWS="0")
    assert code == 0, output
    assert _checks(tmp_path, DAY)["usage_rows"][:3] == ("pass", 0, 0)


def test_a_crm_snapshot_with_every_row_rejected_fails_the_date(
    cli: Cli, tmp_path: Path, hook: WebhookRecorder
) -> None:
    _baseline(cli, tmp_path, hook)
    header = b"company_id,company_name,country,industry_tag,last_contact_at\n"
    rows = b"".join(b",Name %d,DE,saas,2025-05-01T00:00:00Z\n" % n for n in range(3))
    _store(tmp_path).write("raw", f"crm/crm_companies_{DAY}.csv", [header + rows])

    code, output = cli("run", "--date", str(DAY))

    assert code == 2, output
    line = _line(output, DAY)
    assert line.startswith(f"{DAY}  FAILED in load_crm: check failed: crm_rejected: no CRM row")
    assert "3 of 3 rejected" in line
    checks = _checks(tmp_path, DAY)
    assert checks["crm_rejected"][:2] == ("fail", 1)
    assert checks["crm_shrink"][:2] == ("warn", 1)  # every company vanished from the snapshot
    [message] = hook.received
    assert message["status"] == "failed" and message["failing_step"] == "load_crm"
    assert "crm_rejected" in message["error"]


def test_an_80_percent_usage_drop_warns_everywhere(
    cli: Cli, tmp_path: Path, api: MockApiServer, hook: WebhookRecorder
) -> None:
    _baseline(cli, tmp_path, hook)
    # The API answers for a fifth of the companies: about an 80% drop in usage rows.
    with MockApiServer(MockApiConfig(seed=SEED, companies=COMPANIES // 5)) as smaller:
        code, output = cli("run", "--date", str(DAY), API_URL=smaller.url)

    assert code == 0, output
    line = _line(output, DAY)
    assert line.startswith(f"{DAY}  WARN  ") and "warnings: usage_volume: " in line
    assert "1 date(s) completed, 0 skipped, 1 warning(s) on 1 date(s)" in output
    outcome, value, threshold, _ = _checks(tmp_path, DAY)["usage_volume"]
    assert outcome == "warn" and value < 0.5 and threshold == 0.5
    [message] = hook.received
    assert message["status"] == "succeeded"
    assert len(message["warnings"]) == 1 and "usage_volume" in message["warnings"][0]
    assert "WITH 1 WARNING(S)" in message["attachments"][0]["content"]["body"][0]["text"]

    code, status = cli("status")
    assert f"    {DAY} WARN usage_volume: " in status
    code, report = cli(
        "report", "--start", str(BASELINE[0]), "--end", str(DAY), "--out", str(tmp_path / "r")
    )
    assert code == 0, report
    assert f"  {DAY} WARN usage_volume: " in report
    assert f"- {DAY}: usage_volume: " in (tmp_path / "r" / "report.md").read_text()

    # --fail-on-warning: the same warning fails the date, which stays pending.
    with MockApiServer(MockApiConfig(seed=SEED, companies=COMPANIES // 5)) as smaller:
        code, output = cli(
            "run", "--date", str(DAY), "--force", "--fail-on-warning", API_URL=smaller.url
        )
    assert code == 2, output
    assert _line(output, DAY).startswith(
        f"{DAY}  FAILED in validate: warning treated as failure (--fail-on-warning): usage_volume"
    )
    assert [m["status"] for m in hook.received] == ["succeeded", "failed"]
    code, output = cli("run", "--date", str(DAY))  # not completed: retried (and warns again)
    assert code == 0 and "1 date(s) completed" in output


def test_crm_rows_with_an_unreadable_field_warn(cli: Cli, tmp_path: Path) -> None:
    text = mock_data.crm_csv(SEED, COMPANIES, DAY).decode()
    lines = text.splitlines(keepends=True)
    lines[1] = lines[1].rsplit(",", 1)[0] + ",45987.5\n"  # a spreadsheet serial date
    _store(tmp_path).write("raw", f"crm/crm_companies_{DAY}.csv", ["".join(lines).encode()])

    code, output = cli("run", "--date", str(DAY))

    assert code == 0, output
    line = _line(output, DAY)
    assert line.startswith(f"{DAY}  WARN  ") and "crm_fields_nulled: 1 of " in line
    outcome, value, threshold, message = _checks(tmp_path, DAY)["crm_fields_nulled"]
    assert outcome == "warn" and value > 0 and threshold == 0 and "issue_field" in message
