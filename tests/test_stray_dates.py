"""Stray dates and failed reloads leave no lasting damage (issue 14).

- A date after today is refused unless --allow-future (the CLI passes today in).
- `rollback --staging` of a stray date undoes it: the merges' grid ends at the last load in
  effect again, and the warehouse equals one that never saw the date.
- A reload of a completed date that fails (its load rolled back) leaves the warehouse as it
  was for every reader: the next daily run gives the rows a clean history gives.

Everything runs through the CLI on real DuckDB files with the mock API on loopback.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from company_activity import cli
from company_activity.cliargs import refuse_future
from company_activity.errors import ConfigError
from company_activity.model import merge as model
from company_activity.model.merge import completed_usage_dates
from company_activity.model.rollback import rollback
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from company_activity.warehouse.tsql import transpile_batch
from tests.reference_model import History
from tests.test_model import (
    RUN_TS,
    actual_dimension,
    assert_matches_reference,
    load_crm_day,
    load_usage_day,
    merge_days,
    write_history,
)
from tests.test_model import day as model_day

ROOT = Path(__file__).resolve().parents[1]
D1 = date(2025, 5, 1)
STRAY = date(2099, 12, 31)
COMPANIES = "25"
LINEAGE = {"run_id", "created_at", "updated_at"}

Cli = Callable[..., int]


def day(n: int) -> date:
    return D1 + timedelta(days=n - 1)


@pytest.fixture
def cli_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Cli]:
    """cli_in(name)(*args): the CLI on warehouse and raw zone `name` under tmp_path."""
    for name in ("SQL_CONN_STR", "BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)

    def bound(name: str) -> Cli:
        def run(*args: str) -> int:
            monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / f"{name}.duckdb"))
            monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / f"{name}-blob"))
            return cli.main(["--env-file", os.devnull, *args])

        assert run("init-db") == 0
        return run

    return bound


def run_mock(run: Cli, first: date, last: date | None = None, *extra: str) -> int:
    span = ["--date", str(first)] if last is None else ["--start", str(first), "--end", str(last)]
    return run("run", "--mock", "--companies", COMPANIES, *span, *extra)


def content(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What a reader sees: the daily view and the dimension, without lineage columns."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        result = {}
        for table, key in (
            ("analytics.company_activity_daily", "company_id, activity_date"),
            ("dim.companies", "company_id"),
        ):
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema || '.' || table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
                if r[0] not in LINEAGE
            ]
            result[table] = con.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}"
            ).fetchall()
        return result
    finally:
        con.close()


def grid_days(path: Path, start: date) -> list[date]:
    """The calendar days populate_analytics.sql's grid spans for a merge from `start`."""
    merge = sqlglot.parse_one((ROOT / "sql" / "populate_analytics.sql").read_text(), read="tsql")
    grid = next(s for s in merge.find_all(exp.Subquery) if s.alias == "grid_day")
    (statement,) = transpile_batch(grid.this.sql("tsql"))
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(statement.sql, {"start_date": start}).fetchall()
    finally:
        con.close()
    return sorted(r[0] for r in rows)


# --- refusing dates after today ------------------------------------------------------------


def test_refuse_future_takes_today_as_a_parameter() -> None:
    today = date(2026, 11, 30)
    refuse_future([today, today - timedelta(days=400)], False, today)
    refuse_future([STRAY], True, today)
    with pytest.raises(ConfigError, match=r"2099-12-31 is after today \(2026-11-30, UTC\)"):
        refuse_future([today, STRAY], False, today)


def test_commands_that_load_refuse_a_date_after_today(
    cli_in: Callable[[str], Cli], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = cli_in("w")
    capsys.readouterr()
    for args in (
        ("run", "--mock", "--date", str(STRAY)),
        ("run", "--mock", "--start", "2025-01-01", "--end", str(STRAY)),
        ("load-usage", "--start", str(STRAY)),
        ("load-crm", "--date", str(STRAY)),
    ):
        assert run(*args) == cli.EXIT_TERMINAL, args
        err = capsys.readouterr().err
        assert "is after today" in err and "--allow-future" in err, err
        assert len(err.strip().splitlines()) == 1, err
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        assert wh.scalar("SELECT COUNT(*) FROM ops.load_audits") == 0
    finally:
        wh.close()


# --- undoing a stray date ------------------------------------------------------------------


def test_rollback_of_a_stray_date_undoes_it(cli_in: Callable[[str], Cli], tmp_path: Path) -> None:
    """Days 1-3, 2099-12-31 loaded and rolled back, day 4: the same as days 1-4 alone (the
    analytics, and the dimension: the 2099 snapshot's attributes and companies go)."""
    stray = cli_in("stray")
    assert run_mock(stray, day(1), day(3)) == 0
    before = grid_days(tmp_path / "stray.duckdb", day(3))
    assert len(before) == 44 and before[-1] == day(3)

    assert run_mock(stray, STRAY, None, "--allow-future") == 0
    # While it is in effect, a merge's grid adds the stray day's own window, not 74 years.
    during = grid_days(tmp_path / "stray.duckdb", day(3))
    assert len(during) == 88 and during[-1] == STRAY

    assert stray("rollback", "--date", str(STRAY), "--staging") == 0
    assert grid_days(tmp_path / "stray.duckdb", day(3)) == before
    assert run_mock(stray, day(4)) == 0

    clean = cli_in("clean")
    assert run_mock(clean, day(1), day(4)) == 0
    assert content(tmp_path / "stray.duckdb") == content(tmp_path / "clean.duckdb")


# --- a failed reload -----------------------------------------------------------------------


def test_a_failed_reload_leaves_the_warehouse_as_it_was(
    cli_in: Callable[[str], Cli], tmp_path: Path
) -> None:
    run = cli_in("reload")
    assert run_mock(run, day(1), day(5)) == 0
    before = content(tmp_path / "reload.duckdb")
    # The reload of day 3 fails (its raw partition is gone) and rolls back.
    (partition,) = (tmp_path / "reload-blob").rglob(f"date={day(3)}")
    shutil.rmtree(partition)
    assert run("load-usage", "--start", str(day(3))) == cli.EXIT_TERMINAL
    assert content(tmp_path / "reload.duckdb") == before
    wh = DuckDBWarehouse(tmp_path / "reload.duckdb")
    try:
        assert completed_usage_dates(wh, day(1), day(5)) == {day(n) for n in range(1, 6)}
    finally:
        wh.close()
    # The next daily run sees day 3 as loaded, as a clean history does.
    assert run_mock(run, day(6)) == 0
    clean = cli_in("clean")
    assert run_mock(clean, day(1), day(6)) == 0
    assert content(tmp_path / "reload.duckdb") == content(tmp_path / "clean.duckdb")


# --- the dimension after a rollback with staging -------------------------------------------


def test_rollback_with_staging_takes_back_what_the_date_gave_the_dimension(
    tmp_path: Path,
) -> None:
    """A snapshot's attributes and a first_seen_date on the rolled-back date come from what
    remains, and rows before the new first_seen_date go: as if the date was never loaded."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    migrate(wh, RUN_TS)
    h = History()
    load_usage_day(h, model_day(0), [("acme", 2, 20), ("beta", 1, 1)])  # beta: a bad record
    for n in range(1, 8):
        load_usage_day(h, model_day(n), [("acme", 3, 30)] + ([("beta", 4, 4)] if n >= 5 else []))
    load_crm_day(h, model_day(1), [("acme", "Acme One", None), ("beta", "Beta One", None)])
    load_crm_day(h, model_day(7), [("acme", "Acme Seven", None)])
    write_history(wh, h)
    merge_days(wh, h, [model_day(n) for n in range(8)])
    assert actual_dimension(wh)["acme"]["company_name"] == "Acme Seven"
    assert actual_dimension(wh)["beta"]["first_seen_date"] == model_day(0)

    rollback(wh, model_day(7), "rb7", RUN_TS, staging=True)
    rollback(wh, model_day(0), "rb0", RUN_TS, staging=True)
    # The later days' windows still count the rolled-back day 0 until they are merged again.
    model.merge(wh, model_day(1), model_day(6), "again", RUN_TS)

    h.usage = [r for r in h.usage if r.day not in (model_day(0), model_day(7))]
    h.crm = [r for r in h.crm if r.day != model_day(7)]
    h.loads = [r for r in h.loads if r.day not in (model_day(0), model_day(7))]
    h.merged -= {model_day(0), model_day(7)}
    dimension = actual_dimension(wh)
    assert dimension["acme"]["company_name"] == "Acme One"
    assert dimension["acme"]["crm_snapshot_date"] == model_day(1)
    assert dimension["beta"]["first_seen_date"] == model_day(1)  # its CRM row on day 1
    assert_matches_reference(wh, h)
    wh.close()
