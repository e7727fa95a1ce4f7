"""Checks on one date's model output: hard failures stop the pipeline, warnings are reported.

A check is a function `(wh, day) -> Check`. validate() runs DEFAULT_CHECKS and any extra ones
in order; to add a check (a usage-drop check, say), write such a function and pass it in
`extra_checks`, or append it to DEFAULT_CHECKS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from company_activity.model import completed_usage_dates
from company_activity.schema import COMPANY_ACTIVITY_METRICS
from company_activity.warehouse.base import Warehouse

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


def _one(wh: Warehouse, sql: str, day: date) -> int:
    return int(wh.scalar(sql, {"run_date": day}) or 0)


def check_usage_loaded(wh: Warehouse, day: date) -> Check:
    loaded = day in completed_usage_dates(wh, day, day)
    message = "usage load completed" if loaded else "no completed usage load; load and merge it"
    return Check("usage_loaded", ERROR, loaded, message)


def check_unique_keys(wh: Warehouse, day: date) -> Check:
    analytics = _one(
        wh,
        f"SELECT COUNT(*) FROM (SELECT company_id FROM {_METRICS} "
        "WHERE activity_date = CAST(@run_date AS DATE) GROUP BY company_id "
        "HAVING COUNT(*) > 1) AS dup",
        day,
    )
    dimension = int(
        wh.scalar(
            "SELECT COUNT(*) FROM (SELECT company_id FROM dim.companies "
            "GROUP BY company_id HAVING COUNT(*) > 1) AS dup"
        )
        or 0
    )
    passed = analytics == 0 and dimension == 0
    message = (
        "one row per key"
        if passed
        else f"{analytics} duplicated analytics key(s), {dimension} duplicated company id(s)"
    )
    return Check("unique_keys", ERROR, passed, message, {"analytics": analytics, "dim": dimension})


def check_canonical_keys(wh: Warehouse, day: date) -> Check:
    # Compared in Python: SQL Server's case-insensitive collation would hide the difference.
    ids = wh.query(
        f"SELECT DISTINCT company_id FROM {_METRICS} WHERE activity_date = CAST(@run_date AS DATE)",
        {"run_date": day},
    )
    bad = sorted(str(r[0]) for r in ids if str(r[0]) != str(r[0]).strip().lower())
    message = "all company ids trimmed and lower case" if not bad else f"not canonical: {bad[:5]}"
    return Check("canonical_keys", ERROR, not bad, message, {"not_canonical": len(bad)})


# The date's analytics ids, filtered before the join (DuckDB prunes row groups by
# activity_date): the NOT EXISTS forms these replace, planned as correlated mark joins, took
# twice as long at 100 days of history (docs/performance.md, round 3).
_DAY_IDS = f"(SELECT company_id FROM {_METRICS} WHERE activity_date = CAST(@run_date AS DATE))"


def check_grid_complete(wh: Warehouse, day: date) -> Check:
    # Anti-joins written as LEFT JOIN ... IS NULL: the same counts as NOT EXISTS (a matched
    # row is dropped however many matches it has), and cheaper on DuckDB.
    missing = _one(
        wh,
        f"SELECT COUNT(*) FROM dim.companies AS d LEFT JOIN {_DAY_IDS} AS a "
        "ON a.company_id = d.company_id "
        "WHERE d.first_seen_date <= CAST(@run_date AS DATE) AND a.company_id IS NULL",
        day,
    )
    extra = _one(
        wh,
        f"SELECT COUNT(*) FROM {_METRICS} AS a "
        "LEFT JOIN dim.companies AS d ON d.company_id = a.company_id "
        "AND d.first_seen_date <= a.activity_date "
        "WHERE a.activity_date = CAST(@run_date AS DATE) AND d.company_id IS NULL",
        day,
    )
    passed = missing == 0 and extra == 0
    message = (
        "a row for every company seen by this date"
        if passed
        else f"{missing} company row(s) missing, {extra} row(s) for unknown or unseen companies; "
        "re-run `company-activity merge` for the date"
    )
    return Check("grid_complete", ERROR, passed, message, {"missing": missing, "extra": extra})


def check_value_ranges(wh: Warehouse, day: date) -> Check:
    bad = _one(
        wh,
        "SELECT COUNT(*) FROM analytics.company_activity_daily "
        "WHERE activity_date = CAST(@run_date AS DATE) AND (active_users < 0 OR events < 0 "
        "OR active_days_30d < 0 OR active_days_30d > 30 OR engagement_score < 0 "
        "OR engagement_score > 100 OR activity_consistency_30d > 1 "
        "OR days_since_last_activity < 0 OR is_churn_risk NOT IN (0, 1) "
        "OR (is_churn_risk = 1 AND churn_risk_reasons IS NULL))",
        day,
    )
    message = "values within their ranges" if bad == 0 else f"{bad} row(s) out of range"
    return Check("value_ranges", ERROR, bad == 0, message, {"rows": bad})


def check_flags(wh: Warehouse, day: date) -> Check:
    """Rows per data-quality flag and churn reason; a warning when records were dropped."""
    row = wh.query(
        "SELECT COUNT(*), "
        + ", ".join(
            f"SUM(CASE WHEN data_quality_flag LIKE '%{f}%' THEN 1 ELSE 0 END)" for f in DQ_FLAGS
        )
        + ", SUM(CASE WHEN is_churn_risk = 1 THEN 1 ELSE 0 END), "
        + ", ".join(
            f"SUM(CASE WHEN churn_risk_reasons LIKE '%{r}%' THEN 1 ELSE 0 END)"
            for r in CHURN_REASONS
        )
        + " FROM analytics.company_activity_daily WHERE activity_date = CAST(@run_date AS DATE)",
        {"run_date": day},
    )[0]
    values = [int(v or 0) for v in row]
    flags = dict(zip(DQ_FLAGS, values[1:5], strict=True))
    reasons = dict(zip(CHURN_REASONS, values[6:], strict=True))
    details = {"rows": values[0], "flags": flags, "churn_risk": values[5], "reasons": reasons}
    dropped = flags["duplicate_source_records"] + flags["rejected_source_records"]
    shown = ", ".join(f"{k}={v}" for k, v in {**flags, "churn_risk": values[5]}.items() if v)
    message = shown or "no flags"
    return Check("flags", WARNING, dropped == 0, message, details)


_LAYER_COUNTS = {
    "stg.product_usage": "SELECT COUNT(*) FROM stg.product_usage "
    "WHERE file_date = CAST(@run_date AS DATE)",
    "stg.product_usage companies": "SELECT COUNT(DISTINCT company_id) FROM stg.product_usage "
    "WHERE file_date = CAST(@run_date AS DATE)",
    "stg.quarantine": "SELECT COUNT(*) FROM stg.quarantine "
    "WHERE file_date = CAST(@run_date AS DATE)",
    "stg.crm_companies": "SELECT COUNT(*) FROM stg.crm_companies "
    "WHERE snapshot_date = CAST(@run_date AS DATE)",
    "dim.companies": "SELECT COUNT(*) FROM dim.companies",
    "analytics rows": f"SELECT COUNT(*) FROM {_METRICS} "
    "WHERE activity_date = CAST(@run_date AS DATE)",
}


def check_layer_counts(wh: Warehouse, day: date) -> Check:
    # One statement of scalar subqueries, not six: each round trip costs a few milliseconds
    # and validate runs once per date of a backfill.
    row = wh.query(
        "SELECT " + ", ".join(f"({sql})" for sql in _LAYER_COUNTS.values()), {"run_date": day}
    )[0]
    counts = {name: int(value or 0) for name, value in zip(_LAYER_COUNTS, row, strict=True)}
    message = ", ".join(f"{k}={v}" for k, v in counts.items())
    return Check("layer_counts", INFO, True, message, counts)


def check_usage_companies_present(wh: Warehouse, day: date) -> Check:
    missing = _one(
        wh,
        "SELECT COUNT(*) FROM (SELECT DISTINCT company_id FROM stg.product_usage "
        f"WHERE file_date = CAST(@run_date AS DATE)) AS u LEFT JOIN {_DAY_IDS} AS a "
        "ON a.company_id = u.company_id WHERE a.company_id IS NULL",
        day,
    )
    message = (
        "every company with usage has a row"
        if missing == 0
        else f"{missing} company(ies) with usage have no row; run `company-activity merge`"
    )
    return Check("usage_companies_present", ERROR, missing == 0, message, {"missing": missing})


DEFAULT_CHECKS: list[CheckFn] = [
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
    return ValidationResult(
        day, tuple(check(wh, day) for check in (*DEFAULT_CHECKS, *extra_checks))
    )


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
