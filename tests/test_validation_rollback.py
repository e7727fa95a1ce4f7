"""validate and rollback on DuckDB: hard failures, warnings, and a rollback that re-runs clean."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from company_activity.model import merge as model
from company_activity.model.rollback import rollback
from company_activity.model.validation import WARNING, Check, validate, validate_days
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from tests.reference_model import History, differences, expected_rows
from tests.test_model import (
    RUN_TS,
    _cli,
    actual_rows,
    day,
    load_crm_day,
    load_usage_day,
    write_history,
)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    migrate(warehouse, RUN_TS)
    yield warehouse
    warehouse.close()


@pytest.fixture
def merged(wh: DuckDBWarehouse) -> History:
    """Five merged days of two companies, one duplicate record on day 2."""
    h = History()
    load_crm_day(h, day(0), [("acme", "Acme", datetime(2024, 2, 1))])
    for n in range(5):
        records = [("acme", n + 1, 10), ("Beta", 2, 2)] + ([("beta", 3, 3)] if n == 2 else [])
        load_usage_day(h, day(n), records)
    write_history(wh, h)
    model.merge(wh, day(0), day(4), "merge", RUN_TS)
    h.merged.update(day(n) for n in range(5))
    return h


def test_validate_passes_and_summarises(wh: DuckDBWarehouse, merged: History) -> None:
    result = validate(wh, day(2))
    assert result.ok, result.summary_lines()
    flags = result.check("flags")
    assert flags.details["flags"]["duplicate_source_records"] == 1
    assert flags.details["flags"]["no_crm_record"] == 2 - 1
    assert not flags.passed and flags.severity == WARNING
    assert result.warnings == [flags]
    counts = result.check("layer_counts").details
    assert counts["stg.product_usage"] == 3 and counts["analytics rows"] == 2


def test_validate_hard_failures(wh: DuckDBWarehouse, merged: History) -> None:
    # The view's rows live in the metrics table: removing them there hides them from readers.
    wh.execute("DELETE FROM analytics.company_activity_metrics WHERE company_id = 'beta'")
    result = validate(wh, day(3))
    assert not result.ok
    assert {c.name for c in result.failures} == {"grid_complete", "usage_companies_present"}
    assert "re-run `company-activity merge`" in result.check("grid_complete").message
    unloaded = validate(wh, day(9))
    assert "usage_loaded" in [c.name for c in unloaded.failures]


def test_validating_a_range_gives_each_date_what_validating_it_alone_gives(
    wh: DuckDBWarehouse, merged: History
) -> None:
    # Different damage on different days, and a day with no load at all.
    metrics = "analytics.company_activity_metrics"
    wh.execute(
        f"DELETE FROM {metrics} WHERE company_id = 'beta' AND activity_date = @d", {"d": day(1)}
    )
    wh.execute(
        f"INSERT INTO {metrics} SELECT * FROM {metrics} "
        "WHERE activity_date = @d AND company_id = 'acme'",
        {"d": day(3)},
    )
    wh.execute(
        f"UPDATE {metrics} SET company_id = 'Acme ' "
        "WHERE activity_date = @d AND company_id = 'acme'",
        {"d": day(4)},
    )
    days = [day(n) for n in range(7)]
    together = validate_days(wh, days)
    assert list(together) == days
    for one_day in days:
        assert together[one_day] == validate(wh, one_day), one_day
    failing = {d: {c.name for c in together[d].failures} for d in days}
    assert failing[day(0)] == set() and failing[day(2)] == set()
    assert failing[day(1)] == {"grid_complete", "usage_companies_present"}
    assert failing[day(3)] == {"unique_keys"}
    assert failing[day(4)] >= {"canonical_keys"}
    assert "usage_loaded" in failing[day(6)]
    assert validate_days(wh, []) == {}


def test_validate_takes_extra_checks(wh: DuckDBWarehouse, merged: History) -> None:
    def always_fails(_wh: object, _day: date) -> Check:
        return Check("usage_drop", "error", False, "usage fell by 90 %")

    result = validate(wh, day(1), extra_checks=[always_fails])
    assert result.failures == [result.check("usage_drop")]


def test_rollback_then_rerun_restores_the_same_rows(wh: DuckDBWarehouse, merged: History) -> None:
    before = actual_rows(wh)
    result = rollback(wh, day(2), "rb", RUN_TS + timedelta(days=1))
    assert result.analytics_rows_deleted == 2 and result.staging_rows_deleted == 0
    assert not any(d == day(2) for _c, d in actual_rows(wh))
    assert not validate(wh, day(2)).ok
    assert wh.query("SELECT activity_date, analytics_rows_deleted FROM ops.rollbacks") == [
        (day(2), 2)
    ]
    model.merge(wh, day(2), day(2), "rerun", RUN_TS + timedelta(days=2))
    assert actual_rows(wh) == before
    assert validate(wh, day(2)).ok


def test_rollback_with_staging_unloads_the_date(wh: DuckDBWarehouse, merged: History) -> None:
    result = rollback(wh, day(4), "rb", RUN_TS + timedelta(days=1), staging=True)
    assert result.staging_rows_deleted == 2
    assert "pending again: `company-activity run --date 2024-03-05`" in result.summary()
    assert (
        wh.scalar("SELECT COUNT(*) FROM stg.product_usage WHERE file_date = @d", {"d": day(4)}) == 0
    )
    with pytest.raises(Exception, match="no completed usage load for 2024-03-05"):
        model.merge(wh, day(4), day(4), "again", RUN_TS)
    # Merging an earlier day no longer brings the rolled-back day back.
    model.merge(wh, day(3), day(3), "again", RUN_TS)
    h = merged
    h.merged.discard(day(4))
    h.usage = [r for r in h.usage if r.day != day(4)]
    h.loads = [r for r in h.loads if r.day != day(4)]
    assert not differences(expected_rows(h), actual_rows(wh))


def test_cli_validate_and_rollback(tmp_path: Path, wh: DuckDBWarehouse, merged: History) -> None:
    wh.close()
    ok = _cli(tmp_path, "validate", "--date", "2024-03-03")
    assert ok.returncode == 0, ok.stderr
    assert "validation of 2024-03-03: passed" in ok.stdout
    assert "WARN flags" in ok.stdout
    rolled = _cli(tmp_path, "rollback", "--date", "2024-03-03")
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back 2024-03-03: 2 analytics row(s) deleted" in rolled.stdout
    failed = _cli(tmp_path, "validate", "--date", "2024-03-03")
    assert failed.returncode == 2
    assert "FAIL grid_complete" in failed.stdout
