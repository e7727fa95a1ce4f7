"""The company-activity model: dim.companies and analytics.company_activity_daily.

The daily rows are the view analytics.company_activity_daily: the metrics table
analytics.company_activity_metrics (what does not depend on the dimension) joined with
dim.companies, so the attributes are SCD1 without rewriting any row (sql/views/).

The logic is T-SQL in sql/ (one batch per file, each a stored procedure on Azure SQL); this
module checks the preconditions, runs the files through the warehouse runner with
@start_date/@end_date, @run_ts and @run_id bound, and records each merge in ops.merge_audits.

Every merge is set-based over a date range and order independent: after any sequence of loads
and merges (reruns included) the tables equal one chronological pass over the same loaded
dates. docs/company_activity_design.md has the definitions and why the SQL looks as it does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from company_activity.dates import as_date, date_range, utc_now
from company_activity.errors import DataError
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.sql_files import SQL_DIR

log = logging.getLogger(__name__)

# sql/ at the repository root (the package is installed editable from the checkout).

# Files per step, in the order they run (each is one stored procedure on Azure SQL).
# merge_dimension: the CRM snapshot into dim.companies (the view shows it on every row).
DIMENSION_FILES: tuple[str, ...] = ("merge_dimension.sql",)
# merge_analytics: companies first seen in usage into dim.companies, then the daily metrics.
ANALYTICS_FILES: tuple[str, ...] = ("merge_usage_companies.sql", "populate_analytics.sql")

DIMENSION_TARGET = "dim.companies"
ANALYTICS_TARGET = "analytics"
# Tables every merge may write (both merges add companies; a dimension change restates the
# grid): the warehouse locks them for the transaction, so concurrent writers take turns.
MODEL_LOCKS: tuple[str, ...] = ("analytics.company_activity_metrics", "dim.companies")

# The longest window (inactive_14d) looks 43 days back from the row's day.
LOOKBACK_DAYS = 43

# A date's load is in effect when, of the runs for that source and date that changed staging
# (succeeded, or undone by a rollback; a failed run rolled back and changed nothing), the
# latest succeeded. The SQL files say the same in their "loaded" derived tables.

_LATEST_LOADS = """
SELECT latest_load.file_date, latest_load.status
FROM (
    SELECT
        la.file_date,
        la.status,
        ROW_NUMBER() OVER (
            PARTITION BY la.file_date
            ORDER BY la.started_at DESC, la.ended_at DESC, la.run_id DESC
        ) AS run_rank
    FROM ops.load_audits AS la
    WHERE la.source = @source AND la.status IN ('succeeded', 'rolled_back')
        AND la.file_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)
) AS latest_load
WHERE latest_load.run_rank = 1
"""


def loads_in_effect(wh: Warehouse, source: str, start: date, end: date) -> set[date]:
    """Days in start..end whose `source` ('usage' or 'crm') load is in effect (see above)."""
    rows = wh.query(_LATEST_LOADS, {"source": source, "start_date": start, "end_date": end})
    return {as_date(r[0]) for r in rows if r[1] == "succeeded"}


@dataclass(frozen=True)
class MergeResult:
    """What a merge wrote: rows inserted or changed, by target."""

    start: date
    end: date
    dimension_rows: int
    analytics_rows: int

    def summary(self) -> str:
        span = str(self.start) if self.start == self.end else f"{self.start}..{self.end}"
        return (
            f"merged {span}: {self.dimension_rows} dimension row(s) and "
            f"{self.analytics_rows} analytics row(s) written or restated"
        )


def completed_usage_dates(wh: Warehouse, start: date, end: date) -> set[date]:
    """Days in start..end whose usage load is in effect: a failed reload leaves a day loaded."""
    return loads_in_effect(wh, "usage", start, end)


def crm_loaded(wh: Warehouse, day: date) -> bool:
    """True when the day's CRM snapshot load is in effect."""
    return day in loads_in_effect(wh, "crm", day, day)


def require_usage_loaded(wh: Warehouse, start: date, end: date) -> None:
    """Raise DataError naming every day in start..end without a completed usage load."""
    _check_range(start, end)
    completed = completed_usage_dates(wh, start, end)
    missing = [d for d in date_range(start, end) if d not in completed]
    if missing:
        shown = ", ".join(str(d) for d in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(
            f"no completed usage load for {shown}{more}: load those dates first "
            "(the latest load run of a date must have succeeded), or merge a range without them"
        )


def merge_dimension(wh: Warehouse, day: date, run_id: str, run_ts: datetime) -> int:
    """Merge the day's CRM snapshot into dim.companies, when one was loaded; return rows written.

    Attribute changes reach every analytics row of the company through the view, unwritten.
    """
    if not crm_loaded(wh, day):
        log.info("no CRM snapshot loaded for %s; dimension unchanged", day)
        return 0
    return _merge_dimension_range(wh, day, day, run_id, run_ts)


def merge_dimension_range(
    wh: Warehouse, start: date, end: date, run_id: str, run_ts: datetime
) -> int:
    """Merge the CRM snapshots loaded for start..end at once (a backfill); return rows written.

    Equals merge_dimension for each date in order; dates without a snapshot change nothing.
    """
    return _merge_dimension_range(wh, start, end, run_id, run_ts)


def merge_analytics(wh: Warehouse, start: date, end: date, run_id: str, run_ts: datetime) -> int:
    """Merge the analytics rows for start..end, restating later days; return rows written.

    Fails with DataError, before writing anything, when a day in the range has no completed
    usage load.
    """
    require_usage_loaded(wh, start, end)
    started_at = utc_now()
    params = _params(start, end, run_id, run_ts)
    with wh.transaction(*MODEL_LOCKS):
        rows = sum(wh.run_file(SQL_DIR / name, params) for name in ANALYTICS_FILES)
        _record(wh, ANALYTICS_TARGET, start, end, run_id, rows, started_at)
    log.info("analytics merged for %s..%s: %s row(s) written", start, end, rows)
    return rows


def merge(wh: Warehouse, start: date, end: date, run_id: str, run_ts: datetime) -> MergeResult:
    """Merge the dimension (CRM snapshots of the range) and then the analytics, atomically.

    Set-based over the whole range; the result equals merging each date in date order.
    """
    require_usage_loaded(wh, start, end)
    with wh.transaction(*MODEL_LOCKS):
        dimension_rows = _merge_dimension_range(wh, start, end, run_id, run_ts)
        analytics_rows = merge_analytics(wh, start, end, run_id, run_ts)
    return MergeResult(start, end, dimension_rows, analytics_rows)


_GRID_FINGERPRINT = (
    "SELECT COUNT(*), SUM(CAST(DATEDIFF(day, '2000-01-01', c.first_seen_date) AS BIGINT)) "
    "FROM dim.companies AS c"
)


def _merge_dimension_range(
    wh: Warehouse, start: date, end: date, run_id: str, run_ts: datetime
) -> int:
    _check_range(start, end)
    started_at = utc_now()
    params = _params(start, end, run_id, run_ts)
    with wh.transaction(*MODEL_LOCKS):
        # New companies, or first_seen_date moved earlier, change the grid (the fingerprint
        # moves whenever either happens: companies are never deleted, first_seen only drops).
        before = wh.query(_GRID_FINGERPRINT)[0]
        rows = sum(wh.run_file(SQL_DIR / name, params) for name in DIMENSION_FILES)
        if wh.query(_GRID_FINGERPRINT)[0] != before:
            rows += _restate_merged_grid(wh, start, run_id, run_ts)
        _record(wh, DIMENSION_TARGET, start, end, run_id, rows, started_at)
    log.info("dimension merged for %s..%s: %s row(s) written", start, end, rows)
    return rows


def _restate_merged_grid(wh: Warehouse, start: date, run_id: str, run_ts: datetime) -> int:
    """Write the grid rows a dimension change adds on days already merged.

    A snapshot merged after later days (a late or re-run CRM file) can add a company or move
    its first_seen_date earlier; its rows on those days must appear as one chronological pass
    would write them. The analytics merge from the first merged, loaded day at or after the
    snapshot does that (it restates every later day). When the analytics table holds nothing
    from `start` on (the daily run, a fresh backfill), there is nothing to restate.
    """
    last_merged = wh.scalar(
        "SELECT MAX(a.activity_date) FROM analytics.company_activity_metrics AS a"
    )
    if last_merged is None or as_date(last_merged) < start:
        return 0
    loaded = completed_usage_dates(wh, start, as_date(last_merged))
    if not loaded:
        return 0
    first = min(loaded)
    log.info("dimension change reaches merged days: restating analytics from %s", first)
    return merge_analytics(wh, first, first, run_id, run_ts)


def _params(start: date, end: date, run_id: str, run_ts: datetime) -> dict[str, object]:
    return {"start_date": start, "end_date": end, "run_ts": run_ts, "run_id": run_id}


def _check_range(start: date, end: date) -> None:
    if end < start:
        raise DataError(f"end date {end} is before start date {start}; swap them")


def _record(
    wh: Warehouse,
    target: str,
    start: date,
    end: date,
    run_id: str,
    rows: int,
    started_at: datetime,
) -> None:
    """One ops.merge_audits row per merged date (a rerun in the same run replaces it)."""
    wh.execute(
        "DELETE FROM ops.merge_audits WHERE run_id = @run_id AND target = @target "
        "AND run_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)",
        {"run_id": run_id, "target": target, "start_date": start, "end_date": end},
    )
    ended_at = utc_now()
    days = date_range(start, end)
    # Rows are counted per statement, not per date: a one-day merge gets its exact count.
    per_day = rows if len(days) == 1 else None
    wh.insert_rows(
        "ops.merge_audits",
        ("run_id", "target", "run_date", "rows_affected", "started_at", "ended_at"),
        [(run_id, target, d, per_day, started_at, ended_at) for d in days],
    )
