"""Checks on a date's model output: hard failures stop the pipeline, warnings are reported.

validate() runs DEFAULT_CHECKS and any extra ones in order for one date; validate_days() does
the same for several, with the default checks set-based over their range (a backfill's month
of dates in a few statements). A default check is a function `(wh, days) -> {day: Check}`;
to add a check of one date (a usage-drop check, say), write a function `(wh, day) -> Check`
and pass it in `extra_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from company_activity.dates import as_date
from company_activity.model.merge import completed_usage_dates
from company_activity.staging.ids import canonical_ids
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.schema import COMPANY_ACTIVITY_METRICS

ERROR = "error"  # a hard failure: the date's output must not be trusted
WARNING = "warning"  # worth a look; the date still counts as validated
INFO = "info"  # a summary, never fails

DQ_FLAGS = (
    "duplicate_source_records",
    "no_crm_record",
    "partial_window",
    "rejected_source_records",
)
CHURN_REASONS = ("inactive_14d", "usage_drop", "no_recent_contact")

# Checks that need only keys and measures read the metrics table under the view
# (analytics.company_activity_daily joins in the dimension for the attributes and the
# flags that follow from them; only value_ranges and flags need those).
_METRICS = COMPANY_ACTIVITY_METRICS.name


@dataclass(frozen=True)
class Check:
    """One check's outcome."""

    name: str
    severity: str  # error | warning | info
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        status = "ok" if self.passed else ("FAIL" if self.severity == ERROR else "WARN")
        return f"{status:4} {self.name}: {self.message}"


CheckFn = Callable[[Warehouse, date], Check]


@dataclass(frozen=True)
class ValidationResult:
    """Every check run for a date."""

    day: date
    checks: tuple[Check, ...]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and c.severity == ERROR]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and c.severity == WARNING]

    @property
    def ok(self) -> bool:
        """True when no hard check failed."""
        return not self.failures

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def summary_lines(self) -> list[str]:
        verdict = "passed" if self.ok else f"FAILED ({len(self.failures)} hard failure(s))"
        return [f"validation of {self.day}: {verdict}", *(c.line() for c in self.checks)]


# --- the default checks, set-based over a range of dates ---------------------------------------
#
# Each takes (wh, days) and returns a Check per day, reading start..end of the days in one or
# two grouped statements: a backfill validates a month of dates for the price of about one.


def _range(days: Sequence[date]) -> dict[str, date]:
    return {"start_date": min(days), "end_date": max(days)}


def _by_day(wh: Warehouse, sql: str, days: Sequence[date]) -> dict[date, tuple[Any, ...]]:
    """Rows of (day, values...) keyed by day; days without a row are absent."""
    return {as_date(r[0]): tuple(r[1:]) for r in wh.query(sql, _range(days))}


def _count_by_day(wh: Warehouse, sql: str, days: Sequence[date]) -> dict[date, int]:
    return {day: int(values[0] or 0) for day, values in _by_day(wh, sql, days).items()}


_IN_RANGE = "BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"


def check_usage_loaded(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    loaded = completed_usage_dates(wh, min(days), max(days))
    done = "usage load completed"
    missing = "no completed usage load; load and merge it"
    return {
        d: Check("usage_loaded", ERROR, d in loaded, done if d in loaded else missing) for d in days
    }


def check_unique_keys(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    duplicated = _count_by_day(
        wh,
        f"SELECT activity_date, COUNT(*) FROM (SELECT activity_date, company_id FROM {_METRICS} "
        f"WHERE activity_date {_IN_RANGE} GROUP BY activity_date, company_id "
        "HAVING COUNT(*) > 1) AS dup GROUP BY activity_date",
        days,
    )
    dimension = int(
        wh.scalar(
            "SELECT COUNT(*) FROM (SELECT company_id FROM dim.companies "
            "GROUP BY company_id HAVING COUNT(*) > 1) AS dup"
        )
        or 0
    )
    checks = {}
    for day in days:
        analytics = duplicated.get(day, 0)
        passed = analytics == 0 and dimension == 0
        message = (
            "one row per key"
            if passed
            else f"{analytics} duplicated analytics key(s), {dimension} duplicated company id(s)"
        )
        details = {"analytics": analytics, "dim": dimension}
        checks[day] = Check("unique_keys", ERROR, passed, message, details)
    return checks


def check_canonical_keys(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    # Compared outside the warehouse, by staging's own definition (staging/ids.py): SQL
    # Server's collations would hide a difference, and it has no NFC. Each id once for the
    # range; only a range holding a bad one is looked at day by day.
    ids = [
        str(r[0])
        for r in wh.query(
            f"SELECT DISTINCT company_id FROM {_METRICS} WHERE activity_date {_IN_RANGE}",
            _range(days),
        )
    ]
    bad_anywhere = {
        text for text, canonical in zip(ids, canonical_ids(ids), strict=True) if text != canonical
    }
    checks = {}
    for day in days:
        bad: list[str] = []
        if bad_anywhere:
            rows = wh.query(
                f"SELECT DISTINCT company_id FROM {_METRICS} "
                "WHERE activity_date = CAST(@run_date AS DATE)",
                {"run_date": day},
            )
            bad = sorted(str(r[0]) for r in rows if str(r[0]) in bad_anywhere)
        message = (
            "all company ids canonical (trimmed, lower case, NFC, nothing invisible)"
            if not bad
            else f"not canonical: {bad[:5]}"
        )
        checks[day] = Check("canonical_keys", ERROR, not bad, message, {"not_canonical": len(bad)})
    return checks


def check_grid_complete(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    # Anti-joins written as LEFT JOIN ... IS NULL: the same counts as NOT EXISTS (a matched
    # row is dropped however many matches it has), and cheaper on DuckDB.
    missing_by_day = _count_by_day(
        wh,
        "SELECT cal.calendar_date, COUNT(*) FROM dim.companies AS d "
        "INNER JOIN dim.calendar AS cal ON cal.calendar_date >= d.first_seen_date "
        f"LEFT JOIN (SELECT company_id, activity_date FROM {_METRICS} "
        f"WHERE activity_date {_IN_RANGE}) AS a "
        "ON a.company_id = d.company_id AND a.activity_date = cal.calendar_date "
        f"WHERE cal.calendar_date {_IN_RANGE} AND a.company_id IS NULL "
        "GROUP BY cal.calendar_date",
        days,
    )
    extra_by_day = _count_by_day(
        wh,
        f"SELECT a.activity_date, COUNT(*) FROM {_METRICS} AS a "
        "LEFT JOIN dim.companies AS d ON d.company_id = a.company_id "
        "AND d.first_seen_date <= a.activity_date "
        f"WHERE a.activity_date {_IN_RANGE} AND d.company_id IS NULL "
        "GROUP BY a.activity_date",
        days,
    )
    checks = {}
    for day in days:
        missing, extra = missing_by_day.get(day, 0), extra_by_day.get(day, 0)
        passed = missing == 0 and extra == 0
        message = (
            "a row for every company seen by this date"
            if passed
            else f"{missing} company row(s) missing, {extra} row(s) for unknown or unseen "
            "companies; re-run `company-activity merge` for the date"
        )
        details = {"missing": missing, "extra": extra}
        checks[day] = Check("grid_complete", ERROR, passed, message, details)
    return checks


def check_usage_companies_present(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    missing_by_day = _count_by_day(
        wh,
        "SELECT u.file_date, COUNT(*) FROM (SELECT DISTINCT file_date, company_id "
        f"FROM stg.product_usage WHERE file_date {_IN_RANGE}) AS u "
        f"LEFT JOIN (SELECT company_id, activity_date FROM {_METRICS} "
        f"WHERE activity_date {_IN_RANGE}) AS a "
        "ON a.company_id = u.company_id AND a.activity_date = u.file_date "
        "WHERE a.company_id IS NULL GROUP BY u.file_date",
        days,
    )
    checks = {}
    for day in days:
        missing = missing_by_day.get(day, 0)
        message = (
            "every company with usage has a row"
            if missing == 0
            else f"{missing} company(ies) with usage have no row; run `company-activity merge`"
        )
        checks[day] = Check(
            "usage_companies_present", ERROR, missing == 0, message, {"missing": missing}
        )
    return checks


def check_value_ranges(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    bad_by_day = _count_by_day(
        wh,
        "SELECT activity_date, SUM(CASE WHEN active_users < 0 OR events < 0 "
        "OR active_days_30d < 0 OR active_days_30d > 30 OR engagement_score < 0 "
        "OR engagement_score > 100 OR activity_consistency_30d > 1 "
        "OR days_since_last_activity < 0 OR is_churn_risk NOT IN (0, 1) "
        "OR (is_churn_risk = 1 AND churn_risk_reasons IS NULL) THEN 1 ELSE 0 END) "
        f"FROM analytics.company_activity_daily WHERE activity_date {_IN_RANGE} "
        "GROUP BY activity_date",
        days,
    )
    checks = {}
    for day in days:
        bad = bad_by_day.get(day, 0)
        message = "values within their ranges" if bad == 0 else f"{bad} row(s) out of range"
        checks[day] = Check("value_ranges", ERROR, bad == 0, message, {"rows": bad})
    return checks


_DROPPED_FLAGS = ("duplicate_source_records", "rejected_source_records")


def check_flags(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    """Rows per data-quality flag and churn reason; a warning when records were dropped."""
    found = _by_day(
        wh,
        "SELECT activity_date, COUNT(*), "
        + ", ".join(
            f"SUM(CASE WHEN data_quality_flag LIKE '%{f}%' THEN 1 ELSE 0 END)" for f in DQ_FLAGS
        )
        + ", SUM(CASE WHEN is_churn_risk = 1 THEN 1 ELSE 0 END), "
        + ", ".join(
            f"SUM(CASE WHEN churn_risk_reasons LIKE '%{r}%' THEN 1 ELSE 0 END)"
            for r in CHURN_REASONS
        )
        + f" FROM analytics.company_activity_daily WHERE activity_date {_IN_RANGE} "
        "GROUP BY activity_date",
        days,
    )
    checks = {}
    for day in days:
        values = [
            int(v or 0) for v in found.get(day, (0,) * (2 + len(DQ_FLAGS) + len(CHURN_REASONS)))
        ]
        flags = dict(zip(DQ_FLAGS, values[1:5], strict=True))
        reasons = dict(zip(CHURN_REASONS, values[6:], strict=True))
        details = {"rows": values[0], "flags": flags, "churn_risk": values[5], "reasons": reasons}
        dropped = sum(flags[k] for k in _DROPPED_FLAGS)
        if dropped:
            # The warning names only what it is about: rows whose source records were dropped
            # (partial windows and churn risk are information, shown on the summary line).
            lost = ", ".join(f"{k}={flags[k]}" for k in _DROPPED_FLAGS if flags[k])
            message = f"source records dropped on {dropped} row(s): {lost}"
        else:
            shown = ", ".join(
                f"{k}={v}" for k, v in {**flags, "churn_risk": values[5]}.items() if v
            )
            message = shown or "no flags"
        checks[day] = Check("flags", WARNING, dropped == 0, message, details)
    return checks


# Rows per layer for each day, in the order reported; dim.companies is not by day (its total).
_LAYER_COUNTS: dict[str, str | None] = {
    "stg.product_usage": "SELECT file_date, COUNT(*) FROM stg.product_usage "
    f"WHERE file_date {_IN_RANGE} GROUP BY file_date",
    "stg.product_usage companies": "SELECT file_date, COUNT(DISTINCT company_id) "
    f"FROM stg.product_usage WHERE file_date {_IN_RANGE} GROUP BY file_date",
    "stg.quarantine": "SELECT file_date, COUNT(*) FROM stg.quarantine "
    f"WHERE file_date {_IN_RANGE} GROUP BY file_date",
    "stg.crm_companies": "SELECT snapshot_date, COUNT(*) FROM stg.crm_companies "
    f"WHERE snapshot_date {_IN_RANGE} GROUP BY snapshot_date",
    "dim.companies": None,
    "analytics rows": f"SELECT activity_date, COUNT(*) FROM {_METRICS} "
    f"WHERE activity_date {_IN_RANGE} GROUP BY activity_date",
}


def check_layer_counts(wh: Warehouse, days: Sequence[date]) -> dict[date, Check]:
    dimension = int(wh.scalar("SELECT COUNT(*) FROM dim.companies") or 0)
    per_layer = {
        name: _count_by_day(wh, sql, days) for name, sql in _LAYER_COUNTS.items() if sql is not None
    }
    checks = {}
    for day in days:
        counts = {
            name: dimension if sql is None else per_layer[name].get(day, 0)
            for name, sql in _LAYER_COUNTS.items()
        }
        message = ", ".join(f"{k}={v}" for k, v in counts.items())
        checks[day] = Check("layer_counts", INFO, True, message, counts)
    return checks


RangeCheckFn = Callable[[Warehouse, Sequence[date]], dict[date, Check]]

DEFAULT_CHECKS: list[RangeCheckFn] = [
    check_usage_loaded,
    check_unique_keys,
    check_canonical_keys,
    check_grid_complete,
    check_usage_companies_present,
    check_value_ranges,
    check_flags,
    check_layer_counts,
]


def validate(wh: Warehouse, day: date, extra_checks: Sequence[CheckFn] = ()) -> ValidationResult:
    """Run every default check, then the extra ones, for one date."""
    return validate_days(wh, [day], extra_checks)[day]


def validate_days(
    wh: Warehouse, days: Sequence[date], extra_checks: Sequence[CheckFn] = ()
) -> dict[date, ValidationResult]:
    """validate() for each of these dates, the default checks set-based over their range."""
    if not days:
        return {}
    found = [check(wh, days) for check in DEFAULT_CHECKS]
    return {
        day: ValidationResult(
            day, (*(checks[day] for checks in found), *(check(wh, day) for check in extra_checks))
        )
        for day in days
    }


def usage_drop_check(threshold: float, action: str) -> CheckFn:
    """A check that the day's staged usage rows are not far below the trailing 7-day average.

    threshold: the fraction of the average below which the day counts as a drop.
    action: 'warn' (a warning) or 'fail' (a hard failure).
    """
    severity = ERROR if action == "fail" else WARNING

    def check_usage_volume(wh: Warehouse, day: date) -> Check:
        rows = wh.query(
            "SELECT p.file_date, COUNT(*) FROM stg.product_usage AS p"
            " WHERE p.file_date BETWEEN CAST(DATEADD(day, -7, CAST(@run_date AS DATE)) AS DATE)"
            " AND CAST(@run_date AS DATE) GROUP BY p.file_date",
            {"run_date": day},
        )
        counts = {r[0]: int(r[1]) for r in rows}
        today = counts.pop(day, 0)
        loaded = completed_usage_dates(wh, day - timedelta(days=7), day - timedelta(days=1))
        trailing = [counts.get(d, 0) for d in sorted(loaded)]
        if not trailing:
            return Check(
                "usage_volume", INFO, True, f"{today} usage rows; no trailing days to compare"
            )
        average = sum(trailing) / len(trailing)
        dropped = average > 0 and today < threshold * average
        message = (
            f"{today} usage rows vs a trailing {len(trailing)}-day average of {average:.1f}"
            + (f": below {threshold:.0%} of it" if dropped else "")
        )
        return Check(
            "usage_volume",
            severity,
            not dropped,
            message,
            {"rows": today, "trailing_average": round(average, 1), "threshold": threshold},
        )

    return check_usage_volume
