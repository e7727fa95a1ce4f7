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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from company_activity.errors import PipelineError, TerminalError, TransientError
from company_activity.pipeline import names as step_names
from company_activity.pipeline.notify import RunMessage
from company_activity.pipeline.runlog import RunLog
from company_activity.redact import redact
from company_activity.warehouse.base import Warehouse

log = logging.getLogger(__name__)

STEP_BACKOFF_INITIAL = 2.0  # seconds before the first retry of a step
STEP_BACKOFF_MAX = 60.0
# From this many pending dates on, the merges run once over the range (see the docstring).
RANGE_MIN_DATES = 8
# Pending dates merged together in the backfill path. A chunk's merge reads its dates plus the
# 44-day lookback: a month keeps that grid (companies x 75 days) in memory where a year's
# (companies x 409 days) spilled to disk, and loads only what the chunk merges.
RANGE_CHUNK_DATES = 31
# Steps that may run once over a date range, in pipeline order.
RANGE_STEPS: tuple[str, ...] = (step_names.MERGE_DIMENSION, step_names.MERGE_ANALYTICS)


@dataclass
class StepOutcome:
    """What a step reports: the rows it touched and any counts worth keeping."""

    rows: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


StepFn = Callable[[date], StepOutcome]
RangeStepFn = Callable[[date, date], StepOutcome]
Notifier = Callable[[RunMessage], bool]


@dataclass
class DateResult:
    """The outcome of one date."""

    day: date
    status: str  # succeeded | failed | skipped
    seconds: float = 0.0
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    failing_step: str | None = None
    error: str | None = None
    transient: bool = False

    def summary_line(self) -> str:
        if self.status == "skipped":
            return f"{self.day}  skipped (already completed; --force to rerun)"
        if self.status == "failed":
            return f"{self.day}  FAILED in {self.failing_step}: {self.error}"
        parts = []
        for step in (step_names.LOAD_CRM, step_names.LOAD_USAGE, step_names.MERGE_ANALYTICS):
            outcome = self.outcomes.get(step)
            if outcome is not None:
                merged_as = "range" if "range" in outcome.details else "-"
                parts.append(f"{step}={outcome.rows if outcome.rows is not None else merged_as}")
        rejected = sum(int(o.details.get("rejected", 0)) for o in self.outcomes.values())
        parts.append(f"rejected={rejected}")
        flags = self.outcomes.get(step_names.VALIDATE, StepOutcome()).details.get("flags")
        if flags:
            parts.append("flags: " + " ".join(f"{k}={v}" for k, v in sorted(flags.items())))
        return f"{self.day}  ok  {' '.join(parts)}  {self.seconds:.1f}s"


@dataclass
class RunResult:
    run_id: str
    dates: list[DateResult]

    @property
    def failed(self) -> DateResult | None:
        return next((d for d in self.dates if d.status == "failed"), None)

    @property
    def ok(self) -> bool:
        return self.failed is None


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
    ) -> None:
        missing = [s for s in step_names.STEP_NAMES if s != step_names.NOTIFY and s not in steps]
        if missing:
            raise TerminalError(f"pipeline steps not wired: {', '.join(missing)}")
        self.wh = wh
        self.run_id = run_id
        self.steps = steps
        self.notifier = notifier
        self.clock = clock
        self.max_attempts = max(1, max_attempts)
        self.sleep = sleep
        self.on_date_done = on_date_done
        self.range_steps = dict(range_steps or {})
        if self.range_steps and set(self.range_steps) != set(RANGE_STEPS):
            raise TerminalError(f"range steps must be exactly: {', '.join(RANGE_STEPS)}")
        self.range_min_dates = max(2, range_min_dates)
        self.range_chunk_dates = max(2, range_chunk_dates)
        self.prepare_validation = prepare_validation
        self.log = RunLog(wh, run_id, step_names.PIPELINE_NAME)

    def run(self, dates: Sequence[date], command: str, force: bool = False) -> RunResult:
        start, end = min(dates), max(dates)
        done = set() if force else self.log.completed_dates(step_names.VALIDATE, start, end)
        self.log.start_run(command, start, end, self.clock())
        pending = [d for d in dates if d not in done]
        try:
            if self.range_steps and len(pending) >= self.range_min_dates:
                results = self._run_range(dates, done, end)
            else:
                results = self._run_dates(dates, done, end)
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM): record it, tell someone, then let it end the process.
            self._interrupted(exc)
            raise
        failed = next((r for r in results if r.status == "failed"), None)
        self.log.end_run(
            "failed" if failed else "succeeded",
            self.clock(),
            f"{failed.failing_step} on {failed.day}: {failed.error}" if failed else None,
        )
        return RunResult(self.run_id, results)

    def _run_dates(self, dates: Sequence[date], done: set[date], end: date) -> list[DateResult]:
        """Every step of one date, then the next date, stopping at the first failure."""
        results: list[DateResult] = []
        for day in dates:
            if day in done:
                result = DateResult(day, "skipped")
            else:
                result = self._run_date(day, last=day == end)
            results.append(result)
            if self.on_date_done:
                self.on_date_done(result)
            if result.status == "failed":
                break
        return results

    def _run_range(self, dates: Sequence[date], done: set[date], end: date) -> list[DateResult]:
        """The backfill path: chunk by chunk, per-date loads, range merges, per-date validation."""
        by_day = {day: DateResult(day, "skipped" if day in done else "succeeded") for day in dates}
        pending = [d for d in dates if d not in done]
        stopped: DateResult | None = None
        results: list[DateResult] = []
        reported = 0
        for first in range(0, len(pending), self.range_chunk_dates):
            chunk = pending[first : first + self.range_chunk_dates]
            stopped = self._run_chunk(chunk, by_day)
            # Report every date up to the chunk's last (skipped ones included) as it finishes.
            upto = dates.index(chunk[-1]) + 1
            for day in dates[reported:upto]:
                result = by_day[day]
                results.append(result)
                last = stopped is None and day == end
                if result is stopped or (last and result.status != "skipped"):
                    self._notify(day, result)
                if self.on_date_done:
                    self.on_date_done(result)
                if result is stopped:
                    return results
            reported = upto
        for day in dates[reported:]:  # skipped dates after the last pending one
            results.append(by_day[day])
            if self.on_date_done:
                self.on_date_done(by_day[day])
        return results

    def _run_chunk(
        self, chunk: Sequence[date], by_day: Mapping[date, DateResult]
    ) -> DateResult | None:
        """One chunk of pending dates; returns the date that stopped the run, if one did."""
        per_date = [s for s in step_names.STEP_NAMES if s not in (*RANGE_STEPS, step_names.NOTIFY)]
        before_merge = per_date[: per_date.index(step_names.VALIDATE)]
        loaded: list[date] = []
        stopped: DateResult | None = None
        for day in chunk:
            if not self._run_steps(by_day[day], before_merge):
                stopped = by_day[day]
                break
            loaded.append(day)
        if not loaded:
            return stopped
        for name in RANGE_STEPS:
            if not self._run_range_step(loaded, name, by_day):
                return by_day[loaded[0]]
        self._prepare_validation(loaded)
        for day in loaded:
            if not self._run_steps(by_day[day], (step_names.VALIDATE,)):
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
            log.warning(
                "validating %s..%s together failed (%s); one date at a time",
                days[0],
                days[-1],
                redact(exc),
            )

    def _run_steps(self, result: DateResult, names: Sequence[str]) -> bool:
        """Run these steps of one date in order; False (result marked failed) on a failure."""
        started = time.monotonic()
        try:
            for name in names:
                try:
                    result.outcomes[name] = self._run_step(result.day, name)
                except PipelineError as exc:
                    result.status, result.failing_step, result.error = "failed", name, redact(exc)
                    result.transient = isinstance(exc, TransientError)
                    return False
            return True
        finally:
            result.seconds += time.monotonic() - started

    def _run_range_step(
        self, days: Sequence[date], name: str, by_day: Mapping[date, DateResult]
    ) -> bool:
        """One range step over days[0]..days[-1], logged against each date."""
        start, end = days[0], days[-1]
        started = time.monotonic()
        for day in days:
            self.log.start_step(day, name, self.clock())
        attempts = 0

        def count_attempt(state: RetryCallState) -> None:
            nonlocal attempts
            attempts = state.attempt_number

        error: PipelineError | None = None
        outcome = StepOutcome()
        try:
            outcome = self._retrying(name, f"{start}..{end}", count_attempt)(
                self.range_steps[name], start, end
            )
        except PipelineError as exc:
            error = exc
        except Exception as exc:
            log.error(
                "%s %s..%s failed unexpectedly: %r",
                name,
                start,
                end,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            error = TerminalError(f"{name} failed unexpectedly: {redact(exc)}")
        if error is not None:
            log.error("%s %s..%s failed: %s", name, start, end, redact(error))
            for day in days:
                self.log.end_step(day, name, "failed", attempts, self.clock(), error=str(error))
            first = by_day[start]
            first.status, first.failing_step, first.error = "failed", name, redact(error)
            first.transient = isinstance(error, TransientError)
            return False
        details = {**outcome.details, "range": f"{start}..{end}", "range_rows": outcome.rows}
        share = (time.monotonic() - started) / len(days)  # each date's part of the range step
        for day in days:
            by_day[day].seconds += share
            self.log.end_step(day, name, "succeeded", attempts, self.clock(), None, details)
            by_day[day].outcomes[name] = StepOutcome(None, details)
        log.info("%s %s..%s ok (rows=%s)", name, start, end, outcome.rows)
        return True

    def _run_date(self, day: date, last: bool) -> DateResult:
        started = time.monotonic()
        result = DateResult(day, "succeeded")
        for name in step_names.STEP_NAMES:
            if name == step_names.NOTIFY:
                continue
            try:
                result.outcomes[name] = self._run_step(day, name)
            except PipelineError as exc:
                result.status, result.failing_step, result.error = "failed", name, redact(exc)
                result.transient = isinstance(exc, TransientError)
                break
        result.seconds = time.monotonic() - started
        if result.status == "failed" or last:
            self._notify(day, result)
        return result

    def _run_step(self, day: date, name: str) -> StepOutcome:
        self.log.start_step(day, name, self.clock())
        attempts = 0

        def count_attempt(state: RetryCallState) -> None:
            nonlocal attempts
            attempts = state.attempt_number

        try:
            outcome: StepOutcome = self._retrying(name, str(day), count_attempt)(
                self.steps[name], day
            )
        except PipelineError as exc:
            self.log.end_step(day, name, "failed", attempts, self.clock(), error=str(exc))
            log.error("%s %s failed after %s attempt(s): %s", name, day, attempts, redact(exc))
            raise
        except Exception as exc:
            self.log.end_step(day, name, "failed", attempts, self.clock(), error=repr(exc))
            # The traceback only at debug level (--verbose): one line otherwise.
            log.error(
                "%s %s failed unexpectedly: %r",
                name,
                day,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            raise TerminalError(f"{name} failed unexpectedly: {redact(exc)}") from exc
        self.log.end_step(
            day, name, "succeeded", attempts, self.clock(), outcome.rows, outcome.details
        )
        log.info("%s %s ok (%s attempt(s), rows=%s)", name, day, attempts, outcome.rows)
        return outcome

    def _retrying(
        self, name: str, label: str, before: Callable[[RetryCallState], None]
    ) -> Retrying:
        """The step retry policy: transient errors, exponential backoff, bounded attempts."""

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s %s attempt %s failed (%s); retrying",
                name,
                label,
                state.attempt_number,
                redact(error),
            )

        return Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential_jitter(multiplier=STEP_BACKOFF_INITIAL, max=STEP_BACKOFF_MAX),
            retry=retry_if_exception_type(TransientError),
            before=before,
            before_sleep=log_retry,
            sleep=self.sleep,
            reraise=True,
        )

    def _interrupted(self, exc: BaseException) -> None:
        reason = (
            "interrupted (Ctrl-C or SIGTERM)" if isinstance(exc, KeyboardInterrupt) else repr(exc)
        )
        open_steps = list(self.log.open_steps)
        for day, step in open_steps:
            self.log.end_step(day, step, "failed", 0, self.clock(), error=reason)
        self.log.end_run("failed", self.clock(), reason)
        if open_steps:
            day, step = open_steps[0]
            self._notify(day, DateResult(day, "failed", failing_step=step, error=reason))

    def _notify(self, day: date, result: DateResult) -> None:
        """The notify step: never fails the run, whatever the webhook does."""
        self.log.start_step(day, step_names.NOTIFY, self.clock())
        counts = {
            name: outcome.rows
            for name, outcome in result.outcomes.items()
            if outcome.rows is not None
        }
        message = RunMessage(
            pipeline=step_names.PIPELINE_NAME,
            run_id=self.run_id,
            status=result.status,
            start_date=day.isoformat(),
            end_date=day.isoformat(),
            failing_step=result.failing_step,
            failing_date=day.isoformat() if result.failing_step else None,
            error=result.error,
            counts=counts,
        )
        delivered = self.notifier(message)
        self.log.end_step(
            day,
            step_names.NOTIFY,
            "succeeded",
            1,
            self.clock(),
            details={"delivered": delivered, "status": result.status},
        )
