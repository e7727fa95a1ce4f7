"""The daily pipeline: the same steps, names and order as the Data Factory pipeline.

For each date in order: check_crm_file -> load_crm -> merge_dimension -> fetch_usage ->
load_usage -> merge_analytics -> validate -> notify. Each step retries transient errors with
backoff a bounded number of times; a terminal error stops the run at once. Every step is
idempotent, so rerunning the same command after any failure finishes the job without
duplicates. Dates already completed are skipped unless forced.

A backfill (RANGE_MIN_DATES or more pending dates, when range steps are wired) runs the same
steps with the two merges set-based over a chunk of dates at a time (RANGE_CHUNK_DATES): the
chunk's checks, loads and fetches first, then merge_dimension and merge_analytics once for the
chunk (logged against each date), then validate per date (its checks computed for the chunk
at once when `prepare_validation` is wired), then the next chunk. The model is
order independent, so the tables are the same as date by date; the merges cost one pass over
each chunk instead of one lookback per date, and a chunk's grid stays small enough to be
merged in memory (docs/performance.md).

The run ends with one notification (announce.py), sent before the run log is closed so that a
failing warehouse cannot stop the alert: a failed date, a warning (NOTIFY_ON), a warehouse
that stops working, or an interrupt (SIGINT/SIGTERM: the open step and the run are closed as
`interrupted`, and KeyboardInterrupt ends the process). A run left open by a killed process is
closed as `interrupted` when the next one starts.

The runner orchestrates; the work is split by responsibility: date planning (planning.py),
step execution with retries and check gates (execution.py), the run log (runlog.py) and the
notification (announce.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

from company_activity.errors import PipelineError, TerminalError
from company_activity.pipeline import interrupts
from company_activity.pipeline import names as step_names
from company_activity.pipeline.announce import Announcer
from company_activity.pipeline.execution import (
    STEP_BACKOFF_INITIAL,
    STEP_BACKOFF_MAX,
    StepExecutor,
)
from company_activity.pipeline.notify import RunMessage
from company_activity.pipeline.planning import DatePlan, plan_dates
from company_activity.pipeline.results import (
    DateResult,
    Notifier,
    RangeStepFn,
    RunResult,
    StepFn,
    StepOutcome,
)
from company_activity.pipeline.runlog import RunLog
from company_activity.redact import redact
from company_activity.warehouse.base import Warehouse

__all__ = [
    "RANGE_CHUNK_DATES",
    "RANGE_MIN_DATES",
    "RANGE_STEPS",
    "STEP_BACKOFF_INITIAL",
    "STEP_BACKOFF_MAX",
    "DateResult",
    "Notifier",
    "PipelineRunner",
    "RangeStepFn",
    "RunResult",
    "StepFn",
    "StepOutcome",
]

log = logging.getLogger(__name__)

# From this many pending dates on, the merges run once over the range (see the docstring).
RANGE_MIN_DATES = 8
# Pending dates merged together in the backfill path. A chunk's merge reads its dates plus the
# 44-day lookback: a month keeps that grid (companies x 75 days) in memory where a year's
# (companies x 409 days) spilled to disk, and loads only what the chunk merges.
RANGE_CHUNK_DATES = 31
# Steps that may run once over a date range, in pipeline order.
RANGE_STEPS: tuple[str, ...] = (step_names.MERGE_DIMENSION, step_names.MERGE_ANALYTICS)


class PipelineRunner:
    """Runs the steps for each date, with retries, a run log and notifications."""

    def __init__(
        self,
        wh: Warehouse,
        run_id: str,
        steps: Mapping[str, StepFn],
        notifier: Notifier,
        clock: Callable[[], datetime],
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        on_date_done: Callable[[DateResult], None] | None = None,
        range_steps: Mapping[str, RangeStepFn] | None = None,
        range_min_dates: int = RANGE_MIN_DATES,
        range_chunk_dates: int = RANGE_CHUNK_DATES,
        prepare_validation: Callable[[Sequence[date]], None] | None = None,
        announcer: Announcer | None = None,
        fail_on_warning: bool = False,
    ) -> None:
        missing = [s for s in step_names.STEP_NAMES if s != step_names.NOTIFY and s not in steps]
        if missing:
            raise TerminalError(f"pipeline steps not wired: {', '.join(missing)}")
        self.wh = wh
        self.run_id = run_id
        self.steps = steps
        self.notifier = notifier
        self.clock = clock
        self.on_date_done = on_date_done
        self.range_steps = dict(range_steps or {})
        if self.range_steps and set(self.range_steps) != set(RANGE_STEPS):
            raise TerminalError(f"range steps must be exactly: {', '.join(RANGE_STEPS)}")
        self.range_min_dates = max(2, range_min_dates)
        self.range_chunk_dates = max(2, range_chunk_dates)
        self.prepare_validation = prepare_validation
        self.log = RunLog(wh, run_id, step_names.PIPELINE_NAME)
        self.executor = StepExecutor(
            self.log,
            steps,
            self.range_steps,
            clock,
            max_attempts=max_attempts,
            sleep=sleep,
            fail_on_warning=fail_on_warning,
        )
        self.announcer = announcer or Announcer(notifier)
        self._dates: tuple[date, ...] = ()
        self._results: list[DateResult] = []

    @property
    def max_attempts(self) -> int:
        return self.executor.max_attempts

    def run(self, dates: Sequence[date], command: str, force: bool = False) -> RunResult:
        """Run the pending dates of `dates`; KeyboardInterrupt when interrupted (the run is
        closed and notified first), any other exception when the warehouse stops working
        (notified first, the log closed when it still can be)."""
        self._dates, self._results = tuple(dates), []
        try:
            self.log.close_abandoned(self.clock())
            plan = plan_dates(self.log, dates, force)
            self.log.start_run(command, plan.start, plan.end, self.clock())
            if self.range_steps and plan.use_range_path(self.range_min_dates):
                self._run_range(plan)
            else:
                self._run_dates(plan)
            result = RunResult(self.run_id, self._results)
            self._finish(result)
        except BaseException as exc:
            # Interrupted (wherever it landed: DuckDB says 'Query interrupted'), or the
            # warehouse (or the runner itself) failed outside a step: say so first.
            interrupted = isinstance(exc, KeyboardInterrupt) or interrupts.requested()
            with interrupts.deferred():
                if interrupted:
                    self._stop("interrupted", interrupts.description())
                else:
                    self._stop("failed", f"the run stopped: {redact(exc)}")
            if interrupted and not isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt from exc
            raise
        return result

    def _message(self, status: str, error: str | None, failed: DateResult | None) -> RunMessage:
        """The run's notification, from what this process knows (never the warehouse)."""
        done = [r for r in self._results if r.status == "succeeded"]
        counts: dict[str, int] = {
            "dates completed": len(done),
            "dates skipped": sum(1 for r in self._results if r.status == "skipped"),
        }
        for name in (step_names.LOAD_USAGE, step_names.MERGE_ANALYTICS):
            rows = [r.outcomes[name].rows for r in done if name in r.outcomes]
            if any(n is not None for n in rows):
                counts[f"{name} rows"] = sum(n or 0 for n in rows)
        step, day = (failed.failing_step, failed.day) if failed else (None, None)
        if failed is None and status != "succeeded" and self.executor.current:
            day, step = self.executor.current
        return RunMessage(
            pipeline=step_names.PIPELINE_NAME,
            run_id=self.run_id,
            status=status,
            start_date=min(self._dates).isoformat(),
            end_date=max(self._dates).isoformat(),
            failing_step=step,
            failing_date=day.isoformat() if day else None,
            error=error,
            counts=counts,
            warnings=[f"{d} {c.line()}" for d, c in RunResult(self.run_id, self._results).warnings],
        )

    def _finish(self, result: RunResult) -> None:
        """Notify, then record the notification and close the run."""
        failed = result.failed
        status = "failed" if failed else "succeeded"
        error = f"{failed.failing_step} on {failed.day}: {failed.error}" if failed else None
        message = self._message(status, failed.error if failed else None, failed)
        sent = self.announcer.announce(message)
        processed = [r.day for r in result.dates if r.status != "skipped"]
        notify_day = failed.day if failed else (processed[-1] if processed else None)
        with interrupts.deferred():
            if notify_day is not None:
                self.log.start_step(notify_day, step_names.NOTIFY, self.clock())
                self.log.end_step(
                    notify_day,
                    step_names.NOTIFY,
                    "succeeded" if sent != "undelivered" else "failed",
                    1,
                    self.clock(),
                    details={
                        "notification": sent,
                        "status": status,
                        "warnings": len(message.warnings),
                    },
                )
            self.log.end_run(status, self.clock(), error)

    def _stop(self, status: str, reason: str) -> None:
        """A run stopped outside a step's own failure: notify, then close what is open."""
        self.announcer.announce(self._message(status, reason, None))
        try:
            self.log.close_run(status, self.clock(), reason)
            log.info("run log closed: %s (%s)", status, reason)
        except Exception as exc:  # noqa: BLE001 - the next run closes it (close_abandoned)
            log.warning(
                "could not close the run log (%s); the next run closes it as interrupted",
                redact(exc),
            )

    def _date_done(self, result: DateResult) -> None:
        self._results.append(result)
        if self.on_date_done:
            self.on_date_done(result)

    def _run_dates(self, plan: DatePlan) -> None:
        """Every step of one date, then the next date, stopping at the first failure."""
        per_date = [s for s in step_names.STEP_NAMES if s != step_names.NOTIFY]
        for day in plan.dates:
            if day in plan.done:
                result = DateResult(day, "skipped")
            else:
                result = DateResult(day, "succeeded")
                self.executor.run_steps(result, per_date)
            self._date_done(result)
            if result.status == "failed":
                break

    def _run_range(self, plan: DatePlan) -> None:
        """The backfill path: chunk by chunk, per-date loads, range merges, per-date validation."""
        dates = list(plan.dates)
        by_day = {d: DateResult(d, "skipped" if d in plan.done else "succeeded") for d in dates}
        reported = 0
        for chunk in plan.chunks(self.range_chunk_dates):
            stopped = self._run_chunk(chunk, by_day)
            # Report every date up to the chunk's last (skipped ones included) as it finishes.
            upto = dates.index(chunk[-1]) + 1
            for day in dates[reported:upto]:
                self._date_done(by_day[day])
                if by_day[day] is stopped:
                    return
            reported = upto
        for day in dates[reported:]:  # skipped dates after the last pending one
            self._date_done(by_day[day])

    def _run_chunk(
        self, chunk: Sequence[date], by_day: Mapping[date, DateResult]
    ) -> DateResult | None:
        """One chunk of pending dates; returns the date that stopped the run, if one did."""
        per_date = [s for s in step_names.STEP_NAMES if s not in (*RANGE_STEPS, step_names.NOTIFY)]
        before_merge = per_date[: per_date.index(step_names.VALIDATE)]
        loaded: list[date] = []
        stopped: DateResult | None = None
        for day in chunk:
            if not self.executor.run_steps(by_day[day], before_merge):
                stopped = by_day[day]
                break
            loaded.append(day)
        if not loaded:
            return stopped
        for name in RANGE_STEPS:
            if not self.executor.run_range_step(loaded, name, by_day):
                return by_day[loaded[0]]
        self._prepare_validation(loaded)
        for day in loaded:
            if not self.executor.run_steps(by_day[day], (step_names.VALIDATE,)):
                return by_day[day]
        return stopped

    def _prepare_validation(self, days: Sequence[date]) -> None:
        """Let the validate steps of a chunk share set-based work; best effort: on an error
        each date's step validates on its own."""
        if self.prepare_validation is None:
            return
        try:
            self.prepare_validation(days)
        except PipelineError as exc:
            interrupts.raise_if_requested(exc)
            log.warning(
                "validating %s..%s together failed (%s); one date at a time",
                days[0],
                days[-1],
                redact(exc),
            )
