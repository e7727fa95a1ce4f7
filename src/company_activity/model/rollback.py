"""Roll one date back: delete its analytics rows (optionally its staging rows) and record it.

The analytics rows live in analytics.company_activity_metrics; the view
analytics.company_activity_daily shows them, so deleting there removes the date's rows.

After a rollback the date is pending again in the run log: `company-activity run --date D`
rebuilds its rows, restates the later days and records the date as completed. The step-by-step
commands (reload, `company-activity merge`) rebuild the rows but leave the date pending.
docs/rollback.md is the runbook.

A company stays in dim.companies while any staging row names it (a usage record or a CRM
snapshot row). A rollback retracts the companies no remaining staging row names, with their
analytics rows on every date: those only the rolled-back data introduced, and any left by data
a reload has since replaced (an id staged before the canonical form was fixed, say).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from company_activity.errors import DataError
from company_activity.model.rewind import rewind_dimension
from company_activity.warehouse.base import Warehouse

log = logging.getLogger(__name__)

# A load_audits status that marks a date's loads as undone: the latest run of a date counts,
# so the date stops being "loaded" until it is loaded again.
ROLLED_BACK = "rolled_back"

_STAGING_DELETES = (
    "DELETE FROM stg.product_usage WHERE file_date = CAST(@run_date AS DATE)",
    "DELETE FROM stg.quarantine WHERE file_date = CAST(@run_date AS DATE)",
    "DELETE FROM stg.crm_companies WHERE snapshot_date = CAST(@run_date AS DATE)",
)

# Companies no staging row names (company_id is NOT NULL in both tables, so NOT IN is safe).
_UNNAMED = (
    "company_id NOT IN (SELECT company_id FROM stg.product_usage) "
    "AND company_id NOT IN (SELECT company_id FROM stg.crm_companies)"
)
_RETRACT = (
    "DELETE FROM analytics.company_activity_metrics WHERE company_id IN "
    f"(SELECT company_id FROM dim.companies WHERE {_UNNAMED})",
    f"DELETE FROM dim.companies WHERE {_UNNAMED}",
)


# Anything a date ever had: rows of its own, or a load or pipeline run of it.
_TRACES = (
    "analytics.company_activity_metrics WHERE activity_date",
    "stg.product_usage WHERE file_date",
    "stg.quarantine WHERE file_date",
    "stg.crm_companies WHERE snapshot_date",
    "ops.load_audits WHERE file_date",
    "ops.step_runs WHERE run_date",
)
_HAS_TRACES = (
    "SELECT CASE WHEN "
    + " OR ".join(f"EXISTS (SELECT 1 FROM {t} = CAST(@run_date AS DATE))" for t in _TRACES)
    + " THEN 1 ELSE 0 END"
)


def check_date_has_history(wh: Warehouse, day: date) -> None:
    """Raise DataError when the date has nothing a rollback could undo.

    A date no load, run or row ever named is almost surely a mistyped one: rolling it back
    would report success, record a rollback and leave the intended date as it was.
    """
    if not int(wh.scalar(_HAS_TRACES, {"run_date": day}) or 0):
        raise DataError(
            f"nothing to roll back on {day}: no analytics or staging rows, loads or runs name "
            "that date; check the date"
        )


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback removed."""

    day: date
    analytics_rows_deleted: int
    staging_rows_deleted: int
    staging: bool
    companies_retracted: int = 0
    retracted_analytics_rows: int = 0

    def summary(self, after_today: bool = False) -> str:
        """One line: what was removed and how to rebuild the date. `after_today`: the date
        is after today (UTC), so its re-run needs --allow-future and a plain rollback leaves
        its loads in effect (docs/runbook.md, "Undo a stray date")."""
        text = f"rolled back {self.day}: {self.analytics_rows_deleted} analytics row(s) deleted"
        if self.staging:
            text += f", {self.staging_rows_deleted} staging row(s) deleted"
        if self.companies_retracted:
            text += (
                f", {self.companies_retracted} company(ies) no staging row names retracted "
                f"with their {self.retracted_analytics_rows} analytics row(s)"
            )
        # The run log counts the date as pending from now on: a run rebuilds and records it.
        rerun = f"company-activity run --date {self.day}" + (
            " --allow-future" if after_today else ""
        )
        text += f"; the date is pending again: `{rerun}` rebuilds it (docs/rollback.md)"
        if after_today and not self.staging:
            text += (
                f". {self.day} is after today: its loads still count and the merges still build "
                "their grid to it; to undo a stray date whole, "
                f"`company-activity rollback --date {self.day} --staging` (docs/runbook.md)"
            )
        return text


def rollback(
    wh: Warehouse,
    day: date,
    run_id: str,
    rolled_back_at: datetime,
    staging: bool = False,
) -> RollbackResult:
    """Delete the date's analytics rows (and with staging=True its staging rows), atomically.

    With staging, the date's usage and CRM loads are marked rolled back in ops.load_audits, so
    no merge counts it as loaded until it is loaded again, and the dimension takes back what
    the date gave it (model.rewind): attributes from its snapshot and a first_seen_date on it
    come again from the remaining merged data. With or without staging, companies no remaining
    staging row names leave the dimension with their analytics rows (see the module doc).
    """
    params = {"run_date": day}
    # The merges' locks, and the loads' when staging rows go too (warehouse.transaction).
    locks: tuple[str, ...] = ("analytics.company_activity_metrics", "dim.companies")
    if staging:
        locks += ("stg.crm_companies", "stg.product_usage")
    with wh.transaction(*locks):
        analytics = wh.execute(
            "DELETE FROM analytics.company_activity_metrics "
            "WHERE activity_date = CAST(@run_date AS DATE)",
            params,
        )
        staged = 0
        if staging:
            staged = sum(wh.execute(sql, params) for sql in _STAGING_DELETES)
            wh.insert_rows(
                "ops.load_audits",
                (
                    "run_id", "source", "file_date", "status", "files_read", "lines_read",
                    "lines_staged", "lines_rejected", "bytes_read", "started_at", "ended_at",
                    "error_text",
                ),
                [
                    (run_id, source, day, ROLLED_BACK, 0, 0, 0, 0, 0, rolled_back_at,
                     rolled_back_at, "staging rows removed by company-activity rollback")
                    for source in ("usage", "crm")
                ],
            )  # fmt: skip
            # what the date's snapshot and usage gave the dimension goes with them
            rewind_dimension(wh, day, run_id, rolled_back_at)
        retracted_rows, retracted = (wh.execute(sql) for sql in _RETRACT)
        wh.execute(
            "DELETE FROM ops.rollbacks WHERE run_id = @run_id "
            "AND activity_date = CAST(@run_date AS DATE)",
            {"run_id": run_id, "run_date": day},
        )
        wh.insert_rows(
            "ops.rollbacks",
            (
                "run_id",
                "activity_date",
                "analytics_rows_deleted",
                "staging_rows_deleted",
                "rolled_back_at",
            ),
            [(run_id, day, analytics, staged, rolled_back_at)],
        )
    result = RollbackResult(day, analytics, staged, staging, retracted, retracted_rows)
    log.info("%s", result.summary())
    return result
