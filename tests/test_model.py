"""The company-activity model on DuckDB: definitions, restatement, idempotence, the CLI.

Each test writes staging rows and load audits itself (as the loaders would), merges through
company_activity.model.merge and compares with tests/reference_model.py, an independent Python
statement of the definitions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from company_activity.errors import DataError
from company_activity.model import merge as model
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from company_activity.warehouse.schema import COMPANY_ACTIVITY_DAILY
from tests.reference_model import (
    CrmRecord,
    History,
    LoadRun,
    UsageRecord,
    canonical,
    differences,
    expected_dimension,
    expected_rows,
)

ROOT = Path(__file__).resolve().parents[1]
D0 = date(2024, 3, 1)
RUN_TS = datetime(2025, 1, 1, 6, 0, 0)
LOAD_TS = datetime(2024, 12, 1, 0, 0, 0)
VALUE_COLUMNS = tuple(
    c
    for c in COMPANY_ACTIVITY_DAILY.column_names
    if c not in ("company_id", "activity_date", "run_id", "created_at", "updated_at")
)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


# --- writing a history the way the loaders do ---------------------------------------------


def write_history(wh: DuckDBWarehouse, h: History) -> None:
    """Stage every record and load audit of h (ids canonicalised as the loaders do)."""
    wh.insert_rows(
        "stg.product_usage",
        (
            "file_date", "company_id", "company_id_raw", "active_users", "events", "event_ts",
            "src_file_name", "src_line_number", "run_id", "loaded_at", "raw_json",
        ),
        [
            (r.day, canonical(r.raw_id), r.raw_id, r.active_users, r.events, r.ts, r.file,
             r.line, "load", LOAD_TS, "{}")
            for r in h.usage
        ],
    )  # fmt: skip
    wh.insert_rows(
        "stg.crm_companies",
        (
            "snapshot_date", "company_id", "company_id_raw", "company_name", "country",
            "industry_tag", "last_contact_at", "src_file_name", "src_line_number", "run_id",
            "loaded_at", "raw_line",
        ),
        [
            (r.day, canonical(r.raw_id), r.raw_id, r.name, r.country, r.industry,
             r.last_contact_at, f"crm_companies_{r.day}.csv", r.line, "load", LOAD_TS, "x")
            for r in h.crm
        ],
    )  # fmt: skip
    wh.insert_rows(
        "stg.quarantine",
        (
            "source", "file_date", "src_file_name", "src_line_number", "company_id", "reason",
            "raw_line", "run_id", "loaded_at",
        ),
        [
            ("usage", d, "part-00009.ndjson", n + 1, None if raw is None else canonical(raw),
             "bad active_users", "{}", "load", LOAD_TS)
            for n, (d, raw) in enumerate(h.rejected)
        ],
    )  # fmt: skip
    wh.insert_rows(
        "ops.load_audits",
        (
            "run_id", "source", "file_date", "status", "files_read", "lines_read",
            "lines_staged", "lines_rejected", "bytes_read", "started_at", "ended_at",
        ),
        [
            (f"load-{n}", r.source, r.day, r.status, 1, 1, 1, 0, 1, r.started_at, r.started_at)
            for n, r in enumerate(h.loads)
        ],
    )  # fmt: skip


def load_usage_day(h: History, d: date, records: list[tuple[str, int, int]], at: int = 0) -> None:
    """A completed usage load of day d: (raw id, active users, events) records."""
    for line, (raw, users, events) in enumerate(records, start=1):
        h.usage.append(UsageRecord(d, raw, users, events, None, "part-00000.ndjson", line))
    h.loads.append(LoadRun("usage", d, "succeeded", LOAD_TS + timedelta(minutes=at)))


def load_crm_day(h: History, d: date, records: list[tuple[str, str, datetime | None]]) -> None:
    """A CRM snapshot of day d: (raw id, name, last contact) records."""
    for line, (raw, name, contact) in enumerate(records, start=2):
        h.crm.append(CrmRecord(d, raw, name, "DE", "saas", contact, line))
    h.loads.append(LoadRun("crm", d, "succeeded", LOAD_TS))


def actual_rows(wh: DuckDBWarehouse) -> dict[tuple[str, date], dict[str, Any]]:
    rows = wh.query_dicts(
        f"SELECT company_id, activity_date, {', '.join(VALUE_COLUMNS)} "
        "FROM analytics.company_activity_daily"
    )
    return {(r.pop("company_id"), r.pop("activity_date")): r for r in rows}


def actual_dimension(wh: DuckDBWarehouse) -> dict[str, dict[str, Any]]:
    rows = wh.query_dicts(
        "SELECT company_id, company_name, country, industry_tag, last_contact_at, "
        "crm_snapshot_date, first_seen_date FROM dim.companies"
    )
    return {r.pop("company_id"): r for r in rows}


def assert_matches_reference(wh: DuckDBWarehouse, h: History) -> None:
    assert actual_dimension(wh) == expected_dimension(h)
    problems = differences(expected_rows(h), actual_rows(wh))
    assert not problems, "\n".join(problems[:25])


def merge_days(wh: DuckDBWarehouse, h: History, days: list[date], run: str = "m") -> None:
    for n, d in enumerate(days):
        model.merge(wh, d, d, f"{run}{n}", RUN_TS + timedelta(hours=n))
        h.merged.add(d)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    migrate(warehouse, RUN_TS)
    yield warehouse
    warehouse.close()


# --- the definitions ------------------------------------------------------------------------


def test_windows_count_calendar_days_not_rows(wh: DuckDBWarehouse) -> None:
    """A gap in the loads is zero activity; a '7-day' sum never reaches back further."""
    h = History()
    for n in (0, 1, 2, 10, 11):  # days 3..9 were never loaded
        load_usage_day(h, day(n), [("acme", 5, 50)])
    write_history(wh, h)
    merge_days(wh, h, [day(n) for n in (0, 1, 2, 10, 11)])
    rows = actual_rows(wh)
    assert rows[("acme", day(11))]["rolling_7d_active_users"] == 10  # days 10, 11 only
    assert rows[("acme", day(11))]["rolling_30d_events"] == 250
    assert rows[("acme", day(11))]["active_days_30d"] == 5
    assert rows[("acme", day(11))]["data_quality_flag"] == "no_crm_record,partial_window"
    assert rows[("acme", day(10))]["active_users_dod_pct"] is None  # day 9 had no users
    assert_matches_reference(wh, h)


def test_quiet_companies_keep_a_row_every_day_and_turn_churn_risk(wh: DuckDBWarehouse) -> None:
    h = History()
    load_crm_day(h, day(0), [("Acme", "Acme", datetime(2024, 2, 28, 9)), ("BETA ", "Beta", None)])
    for n in range(40):
        records = [("acme", 3, 30)] + ([(" beta", 9, 90)] if n < 10 else [])
        load_usage_day(h, day(n), records)
    write_history(wh, h)
    model.merge(wh, day(0), day(39), "backfill", RUN_TS)
    h.merged.update(day(n) for n in range(40))
    rows = actual_rows(wh)
    assert len(rows) == 80  # both companies, every day
    quiet = rows[("beta", day(25))]
    assert quiet["active_users"] == 0 and quiet["events"] == 0
    assert quiet["last_activity_date"] == day(9)
    assert quiet["days_since_last_activity"] == 16
    assert quiet["churn_risk_reasons"] == "inactive_14d"
    assert quiet["is_churn_risk"] == 1
    assert rows[("beta", day(16))]["churn_risk_reasons"] == "usage_drop"
    assert rows[("acme", day(39))]["days_since_last_contact"] == 41  # leap year
    assert_matches_reference(wh, h)


def test_duplicates_latest_ts_wins_ties_later_line_and_are_flagged(wh: DuckDBWarehouse) -> None:
    h = History()
    ts = datetime(2024, 3, 1, 12)
    h.usage += [
        UsageRecord(day(0), "acme", 1, 10, ts, "part-00000.ndjson", 1),
        UsageRecord(day(0), "ACME", 7, 70, ts + timedelta(hours=1), "part-00000.ndjson", 2),
        UsageRecord(day(0), "acme ", 2, 20, ts, "part-00001.ndjson", 1),
        UsageRecord(day(0), "beta", 4, 40, ts, "part-00000.ndjson", 3),
        UsageRecord(day(0), "beta", 5, 50, ts, "part-00001.ndjson", 9),
        UsageRecord(day(0), "beta", 6, 60, ts, "part-00001.ndjson", 4),
        UsageRecord(day(0), "gamma", 8, 80, None, "part-00001.ndjson", 5),
        UsageRecord(day(0), "gamma", 1, 1, ts, "part-00000.ndjson", 6),
    ]
    h.loads.append(LoadRun("usage", day(0), "succeeded", LOAD_TS))
    h.rejected += [(day(0), "Gamma"), (day(0), None)]
    write_history(wh, h)
    merge_days(wh, h, [day(0)])
    rows = actual_rows(wh)
    assert (rows[("acme", day(0))]["active_users"], rows[("acme", day(0))]["events"]) == (7, 70)
    assert rows[("beta", day(0))]["active_users"] == 5  # same ts: later (file, line)
    assert rows[("gamma", day(0))]["active_users"] == 1  # a record with a ts beats none
    assert rows[("acme", day(0))]["data_quality_flag"] == (
        "duplicate_source_records,no_crm_record,partial_window"
    )
    assert rows[("gamma", day(0))]["data_quality_flag"] == (
        "duplicate_source_records,no_crm_record,partial_window,rejected_source_records"
    )
    assert_matches_reference(wh, h)


def test_metrics_on_a_hand_computed_day(wh: DuckDBWarehouse) -> None:
    h = History()
    load_crm_day(h, day(0), [("acme", "Acme", datetime(2024, 1, 1, 23, 59))])
    users = [2] * 7 + [4, 4, 4, 4, 4, 4, 8]  # days 0..13
    for n, u in enumerate(users):
        load_usage_day(h, day(n), [("acme", u, u * 3)])
    write_history(wh, h)
    model.merge(wh, day(0), day(13), "r", RUN_TS)
    h.merged.update(day(n) for n in range(14))
    row = actual_rows(wh)[("acme", day(13))]
    assert row["rolling_7d_active_users"] == 32
    assert row["active_users_wow_pct"] == Decimal("1.2857")  # (32 - 14) / 14, exactly rounded
    assert row["active_users_dod_pct"] == 1  # 4 -> 8 is +100 %, day over day
    assert row["usage_density"] == 3
    assert row["peak_active_users_30d"] == 8
    assert row["activity_consistency_30d"] == Decimal("0.4667")
    # trend = min(1, (32/7) / (46/30)) = 1 -> 100 * (0.5 * 14/30 + 0.5) = 73.3
    assert row["engagement_score"] == Decimal("73.3")
    assert row["days_since_last_contact"] == (day(13) - date(2024, 1, 1)).days
    assert row["churn_risk_reasons"] is None  # contact is old, but 14 active days of 30
    assert_matches_reference(wh, h)


def test_issue_16_metrics_are_exact_through_the_merge(wh: DuckDBWarehouse) -> None:
    """3 events over 20,000 users is the tie 0.00015 -> 0.0002 (DuckDB's DOUBLE gave 0.0001).

    a = 22 active days, 377,002 users in 7 days and 2,676,515 in 30 score 66.849999417...:
    66.8 exactly rounded (SQL Server's old expression, trimming its quotients to 6 decimals,
    reached the false tie 66.850000 and gave 66.9).
    """
    h = History()
    for n in range(30):
        if n < 15:
            users = 153313 if n == 0 else 153300  # 15 active days: 2,299,513 users
        elif n < 23:
            users = 0  # 8 quiet days
        elif n < 29:
            users = 59502 if n == 23 else 59500  # 6 days: 357,002 users
        else:
            users = 20000
        load_usage_day(h, day(n), [("acme", users, 3 if n == 29 else 0)])
    write_history(wh, h)
    model.merge(wh, day(0), day(29), "r", RUN_TS)
    h.merged.update(day(n) for n in range(30))
    row = actual_rows(wh)[("acme", day(29))]
    assert (row["active_days_30d"], row["rolling_7d_active_users"]) == (22, 377002)
    assert row["usage_density"] == Decimal("0.0002")
    assert row["engagement_score"] == Decimal("66.8")
    assert_matches_reference(wh, h)


def test_contact_after_the_day_is_unknown_and_crm_never_rolls_back(wh: DuckDBWarehouse) -> None:
    h = History()
    load_usage_day(h, day(0), [("acme", 1, 1)])
    load_usage_day(h, day(1), [("acme", 1, 1)])
    load_crm_day(h, day(1), [("acme", "Acme New", datetime(2024, 3, 2, 8))])
    load_crm_day(h, day(0), [("acme", "Acme Old", datetime(2024, 2, 1, 8))])
    write_history(wh, h)
    merge_days(wh, h, [day(1), day(0)])  # the older snapshot merged last
    rows = actual_rows(wh)
    assert rows[("acme", day(0))]["company_name"] == "Acme New"  # SCD1: current values
    assert rows[("acme", day(0))]["days_since_last_contact"] is None  # contact after day 0
    assert actual_dimension(wh)["acme"]["crm_snapshot_date"] == day(1)
    assert actual_dimension(wh)["acme"]["first_seen_date"] == day(0)
    assert_matches_reference(wh, h)


# --- restatement, idempotence, bounded reads ------------------------------------------------


def test_late_day_restates_later_windows_and_last_activity(wh: DuckDBWarehouse) -> None:
    h = History()
    for n in range(1, 70):
        load_usage_day(h, day(n), [("acme", 0, 0)] if n != 5 else [("beta", 1, 1)])
    write_history(wh, h)
    merge_days(wh, h, [day(n) for n in range(1, 70)])
    assert actual_rows(wh)[("acme", day(69))]["last_activity_date"] is None
    assert ("beta", day(4)) not in actual_rows(wh)
    late = History()
    load_usage_day(late, day(0), [("acme", 1, 1)])  # day 0 arrives after day 69 was merged
    write_history(wh, late)
    h.usage += late.usage
    h.loads += late.loads
    merge_days(wh, h, [day(0)], run="late")  # restates all 69 later days
    rows = actual_rows(wh)
    assert rows[("acme", day(69))]["last_activity_date"] == day(0)
    assert rows[("acme", day(20))]["churn_risk_reasons"] == "inactive_14d"
    assert_matches_reference(wh, h)


def test_company_first_seen_on_a_past_day_gets_every_later_row(wh: DuckDBWarehouse) -> None:
    h = History()
    load_usage_day(h, day(0), [("acme", 1, 1)])
    load_usage_day(h, day(1), [])  # an empty day: no company has a record
    load_usage_day(h, day(2), [("beta", 1, 1)])
    write_history(wh, h)
    merge_days(wh, h, [day(1), day(2), day(0)])
    assert set(actual_rows(wh)) >= {("acme", day(1)), ("acme", day(2)), ("beta", day(2))}
    assert_matches_reference(wh, h)


def test_crm_change_reaches_every_row_of_the_company(wh: DuckDBWarehouse) -> None:
    h = History()
    for n in range(50):
        load_usage_day(h, day(n), [("acme", 1, 1), ("beta", 1, 1)])
    load_crm_day(h, day(49), [("acme", "Acme", datetime(2024, 1, 1))])
    write_history(wh, h)
    model.merge(wh, day(0), day(48), "a", RUN_TS)
    h.merged.update(day(n) for n in range(49))
    before = wh.scalar("SELECT COUNT(*) FROM analytics.company_activity_daily WHERE run_id = 'a'")
    merge_days(wh, h, [day(49)], run="crm")  # a daily merge: the snapshot renames acme
    rows = actual_rows(wh)
    assert all(rows[("acme", day(n))]["company_name"] == "Acme" for n in range(50))
    assert rows[("acme", day(0))]["data_quality_flag"] == "partial_window"
    assert rows[("beta", day(0))]["data_quality_flag"] == "no_crm_record,partial_window"
    # beta's rows were left alone (neither rewritten nor stamped with the new run)
    assert (
        wh.scalar(
            "SELECT COUNT(*) FROM analytics.company_activity_daily "
            "WHERE run_id = 'a' AND company_id = 'beta'"
        )
        == before / 2
    )
    assert_matches_reference(wh, h)


def test_rerun_is_a_no_op_and_created_at_survives_updates(wh: DuckDBWarehouse) -> None:
    h = History()
    for n in range(5):
        load_usage_day(h, day(n), [("acme", n, n)])
    write_history(wh, h)
    model.merge(wh, day(0), day(4), "first", RUN_TS)
    result = model.merge(wh, day(0), day(4), "second", RUN_TS + timedelta(days=1))
    assert result.analytics_rows == 0 and result.dimension_rows == 0
    assert wh.scalar("SELECT COUNT(*) FROM analytics.company_activity_daily "
                     "WHERE run_id <> 'first'") == 0  # fmt: skip
    # A correction to day 2 rewrites day 2 and the later rows it moves, keeping created_at.
    wh.execute("UPDATE stg.product_usage SET active_users = 40 WHERE file_date = @d", {"d": day(2)})
    model.merge(wh, day(2), day(2), "fix", RUN_TS + timedelta(days=2))
    changed = wh.query(
        "SELECT activity_date, created_at, updated_at FROM analytics.company_activity_daily "
        "WHERE run_id = 'fix' ORDER BY activity_date"
    )
    assert [r[0] for r in changed] == [day(2), day(3), day(4)]
    assert all(r[1] == RUN_TS and r[2] == RUN_TS + timedelta(days=2) for r in changed)


def test_daily_merge_reads_only_its_lookback_and_the_previous_row(wh: DuckDBWarehouse) -> None:
    """Staging older than the 44-day lookback is deleted; the next day still comes out right."""
    h = History()
    load_usage_day(h, day(0), [("acme", 2, 2)])
    for n in range(1, 60):
        load_usage_day(h, day(n), [("acme", 0, 0)])
    write_history(wh, h)
    model.merge(wh, day(0), day(58), "backfill", RUN_TS)
    wh.execute("DELETE FROM stg.product_usage WHERE file_date < @d", {"d": day(59 - 43)})
    model.merge(wh, day(59), day(59), "daily", RUN_TS)
    h.merged.update(day(n) for n in range(60))
    assert actual_rows(wh)[("acme", day(59))]["last_activity_date"] == day(0)
    assert_matches_reference(wh, h)


def test_merge_without_a_completed_usage_load_fails_clearly(wh: DuckDBWarehouse) -> None:
    h = History()
    load_usage_day(h, day(0), [("acme", 1, 1)])
    load_usage_day(h, day(1), [("acme", 1, 1)])
    h.loads.append(LoadRun("usage", day(1), "rolled_back", LOAD_TS + timedelta(hours=1)))
    h.loads.append(LoadRun("usage", day(0), "failed", LOAD_TS + timedelta(hours=1)))  # no effect
    write_history(wh, h)
    with pytest.raises(DataError, match=r"no completed usage load for 2024-03-02, 2024-03-03"):
        model.merge(wh, day(0), day(2), "r", RUN_TS)
    assert wh.scalar("SELECT COUNT(*) FROM analytics.company_activity_daily") == 0
    with pytest.raises(DataError, match="before start"):
        model.merge_analytics(wh, day(2), day(0), "r", RUN_TS)


def test_merge_records_audits_and_runs_per_step(wh: DuckDBWarehouse) -> None:
    h = History()
    load_usage_day(h, day(0), [("acme", 1, 1)])
    load_crm_day(h, day(0), [("acme", "Acme", None)])
    write_history(wh, h)
    assert model.merge_dimension(wh, day(0), "run", RUN_TS) == 1
    assert model.merge_dimension(wh, day(1), "run", RUN_TS) == 0  # no snapshot that day
    assert model.merge_analytics(wh, day(0), day(0), "run", RUN_TS) == 1
    audits = wh.query("SELECT target, run_date, rows_affected FROM ops.merge_audits ORDER BY 1")
    assert audits == [("analytics", day(0), 1), ("dim.companies", day(0), 1)]


# --- the command line -----------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "BLOB_", "SQL_"))}
    env.update({"DUCKDB_PATH": str(tmp_path / "w.duckdb"), "LOCAL_BLOB_DIR": str(tmp_path)})
    return subprocess.run(
        [sys.executable, "-m", "company_activity", "--env-file", os.devnull, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_merge(tmp_path: Path, wh: DuckDBWarehouse) -> None:
    h = History()
    for n in range(3):
        load_usage_day(h, day(n), [("acme", 1, 1)])
    write_history(wh, h)
    wh.close()
    ok = _cli(tmp_path, "merge", "--start", "2024-03-01", "--end", "2024-03-03")
    assert ok.returncode == 0, ok.stderr
    assert "merged 2024-03-01..2024-03-03" in ok.stdout
    missing = _cli(tmp_path, "merge", "--start", "2024-03-04", "--end", "2024-03-04")
    assert missing.returncode == 2
    assert "no completed usage load for 2024-03-04" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = _cli(tmp_path, "merge", "--start", "March", "--end", "2024-03-04")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
