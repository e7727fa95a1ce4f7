"""The run log in the warehouse: ops.pipeline_runs, ops.step_runs and ops.check_results.

Each write commits on its own, so the log survives a step that fails and rolls back. A run
that ended without closing its log (killed, or its warehouse failed) is closed as
`interrupted` when the next run starts.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from company_activity.redact import redact
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.schema import CHECK_RESULTS

if TYPE_CHECKING:
    from company_activity.model.checks import CheckResult

_ERROR_LIMIT = 4000
# Azure SQL: a run whose log has not moved for this long is taken as dead (no step runs
# anywhere near as long; a backfill starts a step every few seconds).
ABANDONED_AFTER = timedelta(hours=6)
_MESSAGE_LIMIT = CHECK_RESULTS.column("message").max_length or 1000


def _clip(text: str | None) -> str | None:
    return None if text is None else redact(text)[:_ERROR_LIMIT]


class RunLog:
    """Records one pipeline run and its steps."""

    def __init__(self, wh: Warehouse, run_id: str, pipeline_name: str) -> None:
        self.wh = wh
        self.run_id = run_id
        self.pipeline_name = pipeline_name
        # Steps started and not yet ended, so an interrupted run can close them.
        self.open_steps: list[tuple[date, str]] = []

    def start_run(self, command: str, start: date, end: date, at: datetime) -> None:
        self.wh.execute(
            "INSERT INTO ops.pipeline_runs (run_id, pipeline_name, command, start_date, end_date, "
            "status, started_at) VALUES (@run_id, @pipeline, @command, CAST(@start_date AS DATE), "
            "CAST(@end_date AS DATE), 'running', CAST(@at_ts AS DATETIME2(6)))",
            {
                "run_id": self.run_id,
                "pipeline": self.pipeline_name,
                "command": command[:400],
                "start_date": start,
                "end_date": end,
                "at_ts": at,
            },
        )

    def close_abandoned(self, at: datetime) -> int:
        """Close runs of this pipeline left `running` by a process that died, and their open
        steps, as `interrupted`; return how many runs.

        The embedded engine has one writer at a time (DuckDB locks its file), so a run still
        open when another starts has died. Azure SQL allows concurrent runs (a CLI backfill
        beside the schedule), so there only a run whose log has not moved for
        ABANDONED_AFTER counts as dead.
        """
        reason = "interrupted: the run ended without closing its log (closed by a later run)"
        quiet_since = at - ABANDONED_AFTER if self.wh.engine != "duckdb" else at
        params = {
            "pipeline": self.pipeline_name,
            "run_id": self.run_id,
            "quiet_ts": quiet_since,
        }
        abandoned = [
            str(r[0])
            for r in self.wh.query(
                "SELECT r.run_id FROM ops.pipeline_runs AS r WHERE r.status = 'running'"
                " AND r.pipeline_name = @pipeline AND r.run_id <> @run_id"
                " AND r.started_at <= CAST(@quiet_ts AS DATETIME2(6))"
                " AND NOT EXISTS (SELECT 1 FROM ops.step_runs AS s WHERE s.run_id = r.run_id"
                " AND (s.started_at > CAST(@quiet_ts AS DATETIME2(6))"
                " OR s.ended_at > CAST(@quiet_ts AS DATETIME2(6))))",
                params,
            )
        ]
        for run_id in abandoned:
            closing = {"at_ts": at, "error": reason, "run_id": run_id}
            self.wh.execute(
                "UPDATE ops.step_runs SET status = 'interrupted', "
                "ended_at = CAST(@at_ts AS DATETIME2(6)), error_text = @error "
                "WHERE run_id = @run_id AND status = 'running'",
                closing,
            )
            self.wh.execute(
                "UPDATE ops.pipeline_runs SET status = 'interrupted', "
                "ended_at = CAST(@at_ts AS DATETIME2(6)), error_text = @error "
                "WHERE run_id = @run_id AND status = 'running'",
                closing,
            )
        return len(abandoned)

    def record_checks(self, day: date, step: str, results: list[CheckResult], at: datetime) -> None:
        """Store a step's check results for a date (replacing a retried attempt's)."""
        if not results:
            return
        with self.wh.transaction():
            for result in results:
                self.wh.execute(
                    "DELETE FROM ops.check_results WHERE run_id = @run_id "
                    "AND check_date = CAST(@run_date AS DATE) AND check_name = @name",
                    {"run_id": self.run_id, "run_date": day, "name": result.name},
                )
            self.wh.insert_rows(
                CHECK_RESULTS.name,
                CHECK_RESULTS.column_names,
                [
                    (
                        self.run_id,
                        day,
                        r.name,
                        step,
                        r.outcome,
                        r.value,
                        r.threshold,
                        redact(r.message)[:_MESSAGE_LIMIT],
                        at,
                    )
                    for r in results
                ],
            )

    def close_run(self, status: str, at: datetime, reason: str) -> None:
        """End the run and every step of it still `running` with this status (a stopped run:
        failed or interrupted); read from the table, so a step whose start was recorded just
        as the run stopped is closed too."""
        params = {"status": status, "at_ts": at, "error": _clip(reason), "run_id": self.run_id}
        self.wh.execute(
            "UPDATE ops.step_runs SET status = @status, "
            "ended_at = CAST(@at_ts AS DATETIME2(6)), error_text = @error "
            "WHERE run_id = @run_id AND status = 'running'",
            params,
        )
        self.open_steps.clear()
        self.end_run(status, at, reason)

    def end_run(self, status: str, at: datetime, error: str | None = None) -> None:
        self.wh.execute(
            "UPDATE ops.pipeline_runs SET status = @status, "
            "ended_at = CAST(@at_ts AS DATETIME2(6)), error_text = @error WHERE run_id = @run_id",
            {"status": status, "at_ts": at, "error": _clip(error), "run_id": self.run_id},
        )

    def start_step(self, day: date, step: str, at: datetime) -> None:
        self.wh.execute(
            "INSERT INTO ops.step_runs (run_id, run_date, step_name, status, attempts, started_at) "
            "VALUES (@run_id, CAST(@run_date AS DATE), @step, 'running', 0, "
            "CAST(@at_ts AS DATETIME2(6)))",
            {"run_id": self.run_id, "run_date": day, "step": step, "at_ts": at},
        )
        self.open_steps.append((day, step))

    def end_step(
        self,
        day: date,
        step: str,
        status: str,
        attempts: int,
        at: datetime,
        rows: int | None = None,
        details: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        if (day, step) in self.open_steps:
            self.open_steps.remove((day, step))
        self.wh.execute(
            "UPDATE ops.step_runs SET status = @status, attempts = @attempts, "
            "rows_affected = @rows, details = @details, ended_at = CAST(@at_ts AS DATETIME2(6)), "
            "error_text = @error "
            "WHERE run_id = @run_id AND run_date = CAST(@run_date AS DATE) AND step_name = @step",
            {
                "status": status,
                "attempts": attempts,
                "rows": rows,
                "details": json.dumps(details, default=str, sort_keys=True)[:_ERROR_LIMIT]
                if details
                else None,
                "at_ts": at,
                "error": _clip(error),
                "run_id": self.run_id,
                "run_date": day,
                "step": step,
            },
        )

    def completed_dates(self, step: str, start: date, end: date) -> set[date]:
        """Dates in [start, end] whose most recent run got through `step` successfully.

        Only the latest run of a date counts, so a forced rerun that failed half-way makes the
        date pending again; so does a rollback of the date after that run.
        """
        params = {"step": step, "start_date": start, "end_date": end}
        rows = self.wh.query(
            "SELECT latest.run_date, latest.started_at FROM ("
            " SELECT s.run_date, s.run_id, s.started_at, ROW_NUMBER() OVER ("
            "  PARTITION BY s.run_date ORDER BY s.started_at DESC, s.run_id DESC) AS rn"
            " FROM ops.step_runs AS s"
            " WHERE s.run_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)"
            ") AS latest"
            " INNER JOIN ops.step_runs AS done ON done.run_id = latest.run_id"
            " AND done.run_date = latest.run_date AND done.step_name = @step"
            " AND done.status = 'succeeded'"
            " WHERE latest.rn = 1",
            params,
        )
        rolled_back: dict[date, datetime] = dict(
            self.wh.query(
                "SELECT r.activity_date, MAX(r.rolled_back_at) FROM ops.rollbacks AS r"
                " WHERE r.activity_date BETWEEN CAST(@start_date AS DATE)"
                " AND CAST(@end_date AS DATE) GROUP BY r.activity_date",
                params,
            )
        )
        return {
            day for day, started in rows if day not in rolled_back or rolled_back[day] < started
        }
