"""What the run log says about the dates: coverage, failures, warnings, the last run.

Read-only queries over ops.step_runs, ops.check_results and ops.pipeline_runs, for `status`
and the report. A date's state is its latest run's (as the runner decides what is pending):
completed when that run got through `validate` (and no rollback came after), else failed,
interrupted or running with the step that stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from company_activity.dates import as_date
from company_activity.pipeline import names as step_names
from company_activity.pipeline.runlog import RunLog
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.schema import CHECK_RESULTS

_EVERY_DATE = {"start_date": date(1900, 1, 1), "end_date": date(9999, 12, 31)}

# Each date's latest run: the one with the date's most recent step.
_LATEST = (
    "SELECT s.run_date, s.run_id, ROW_NUMBER() OVER ("
    " PARTITION BY s.run_date ORDER BY s.started_at DESC, s.run_id DESC) AS rn"
    " FROM ops.step_runs AS s"
    " WHERE s.run_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"
)


@dataclass(frozen=True)
class DateProblem:
    """A date whose latest run did not complete it: the step and error that stopped it."""

    day: date
    status: str  # failed | interrupted | running
    step: str
    error: str


@dataclass(frozen=True)
class LastRun:
    run_id: str
    command: str
    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass
class Coverage:
    """The dates the run log knows, by state."""

    completed: list[date] = field(default_factory=list)
    problems: list[DateProblem] = field(default_factory=list)
    warnings: dict[date, list[str]] = field(default_factory=dict)
    last_run: LastRun | None = None

    @property
    def first(self) -> date | None:
        return self.completed[0] if self.completed else None

    @property
    def last(self) -> date | None:
        return self.completed[-1] if self.completed else None

    def gaps(self) -> list[tuple[date, date]]:
        """Ranges of dates between the first and last completed ones that are not completed."""
        return [
            (earlier + timedelta(days=1), later - timedelta(days=1))
            for earlier, later in zip(self.completed, self.completed[1:], strict=False)
            if (later - earlier).days > 1
        ]


def date_warnings(wh: Warehouse, start: date, end: date) -> dict[date, list[str]]:
    """Each date's warnings from its latest run, as 'check: message' lines."""
    if not wh.table_exists(CHECK_RESULTS.name):
        return {}
    rows = wh.query(
        "SELECT c.check_date, c.check_name, c.message FROM ops.check_results AS c"
        f" INNER JOIN ({_LATEST}) AS l ON l.run_date = c.check_date AND l.run_id = c.run_id"
        " WHERE l.rn = 1 AND c.outcome = 'warn' ORDER BY c.check_date, c.check_name",
        {"start_date": start, "end_date": end},
    )
    found: dict[date, list[str]] = {}
    for day, name, message in rows:
        found.setdefault(as_date(day), []).append(f"{name}: {message}")
    return found


def coverage(wh: Warehouse) -> Coverage:
    """Completed dates, dates that failed, dates with warnings and the last run."""
    log = RunLog(wh, "", step_names.PIPELINE_NAME)
    result = Coverage()
    completed = log.completed_dates(step_names.VALIDATE, *_EVERY_DATE.values())
    result.completed = sorted(completed)
    rows = wh.query(
        "SELECT s.run_date, s.step_name, s.status, s.error_text FROM ops.step_runs AS s"
        f" INNER JOIN ({_LATEST}) AS l ON l.run_date = s.run_date AND l.run_id = s.run_id"
        " WHERE l.rn = 1 AND s.status IN ('failed', 'interrupted', 'running')"
        " AND s.step_name <> @notify ORDER BY s.run_date, s.started_at",
        {**_EVERY_DATE, "notify": step_names.NOTIFY},
    )
    seen: set[date] = set()
    for raw_day, step, status, error in rows:
        day = as_date(raw_day)
        if day in completed or day in seen:
            continue
        seen.add(day)
        result.problems.append(DateProblem(day, str(status), str(step), str(error or "")))
    result.warnings = {
        d: w for d, w in date_warnings(wh, *_EVERY_DATE.values()).items() if d in completed
    }
    last: list[Any] = wh.query(
        "SELECT TOP 1 r.run_id, r.command, r.status, r.started_at, r.ended_at"
        " FROM ops.pipeline_runs AS r ORDER BY r.started_at DESC, r.run_id DESC"
    )
    if last:
        run_id, command, status, started_at, ended_at = last[0]
        result.last_run = LastRun(str(run_id), str(command), str(status), started_at, ended_at)
    return result


def render(cov: Coverage, limit: int = 20) -> list[str]:
    """Coverage as lines for `status` (each list cut at `limit` entries, with the count)."""

    def clipped(items: list[str]) -> list[str]:
        more = len(items) - limit
        return items[:limit] + ([f"    ... and {more} more"] if more > 0 else [])

    if cov.first is None or cov.last is None:
        lines = ["coverage: no completed date yet"]
    else:
        lines = [f"coverage: {cov.first} .. {cov.last}, {len(cov.completed):,} date(s) completed"]
    gaps = cov.gaps()
    if gaps:
        missing = sum((b - a).days + 1 for a, b in gaps)
        lines.append(f"  gaps ({missing:,} date(s) not completed):")
        lines += clipped([f"    {a}" if a == b else f"    {a} .. {b}" for a, b in gaps])
    else:
        lines.append("  gaps: none")
    if cov.problems:
        lines.append(f"  dates not completed by their latest run ({len(cov.problems):,}):")
        lines += clipped(
            [f"    {p.day} {p.status.upper()} in {p.step}: {p.error[:160]}" for p in cov.problems]
        )
    else:
        lines.append("  failed dates: none")
    if cov.warnings:
        lines.append(f"  dates with warnings ({len(cov.warnings):,}):")
        lines += clipped(
            [f"    {day} WARN {'; '.join(w)[:200]}" for day, w in sorted(cov.warnings.items())]
        )
    else:
        lines.append("  dates with warnings: none")
    run = cov.last_run
    if run is None:
        lines.append("last run: none")
    else:
        ended = f", ended {run.ended_at:%Y-%m-%d %H:%M:%S}" if run.ended_at else ""
        lines.append(
            f"last run: {run.run_id} {run.status.upper()} (started "
            f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC{ended}): {run.command}"
        )
    return lines
