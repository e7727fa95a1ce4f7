"""Step execution: one step of one date (or a range step over several), with retries and
its run-log rows.

Transient errors are retried with exponential backoff a bounded number of times; a terminal
error ends the step at once. A step's unexpected exception (a bug) becomes one TerminalError
line, with the traceback at debug level only. Any exception after SIGINT/SIGTERM is the
interrupt (interrupts.py) and is raised as KeyboardInterrupt, never retried or taken for a
failure. The data-quality checks a step ran are stored; one that fails (or warns, with
fail_on_warning) fails the step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from company_activity.errors import DataError, PipelineError, TerminalError, TransientError
from company_activity.model.checks import FAIL, WARN
from company_activity.pipeline import interrupts
from company_activity.pipeline.results import DateResult, RangeStepFn, StepFn, StepOutcome
from company_activity.pipeline.runlog import RunLog
from company_activity.redact import redact

log = logging.getLogger(__name__)

STEP_BACKOFF_INITIAL = 2.0  # seconds before the first retry of a step
STEP_BACKOFF_MAX = 60.0


class StepExecutor:
    """Runs steps with the retry policy and records each in the run log."""

    def __init__(
        self,
        run_log: RunLog,
        steps: Mapping[str, StepFn],
        range_steps: Mapping[str, RangeStepFn],
        clock: Callable[[], datetime],
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        fail_on_warning: bool = False,
    ) -> None:
        self.log = run_log
        self.fail_on_warning = fail_on_warning
        # The step (date, name) running now, for a message when the run stops in it.
        self.current: tuple[date, str] | None = None
        self.steps = steps
        self.range_steps = range_steps
        self.clock = clock
        self.max_attempts = max(1, max_attempts)
        self.sleep = sleep

    def run_steps(self, result: DateResult, names: Sequence[str]) -> bool:
        """Run these steps of one date in order; False (result marked failed) on a failure."""
        started = time.monotonic()
        try:
            for name in names:
                try:
                    result.outcomes[name] = self.run_step(result.day, name)
                except PipelineError as exc:
                    result.status, result.failing_step, result.error = "failed", name, redact(exc)
                    result.transient = isinstance(exc, TransientError)
                    return False
            return True
        finally:
            result.seconds += time.monotonic() - started

    def run_step(self, day: date, name: str) -> StepOutcome:
        """One step of one date; raises PipelineError when it fails for good."""
        self.current = (day, name)
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
            interrupts.raise_if_requested(exc)
            self.log.end_step(day, name, "failed", attempts, self.clock(), error=str(exc))
            log.error("%s %s failed after %s attempt(s): %s", name, day, attempts, redact(exc))
            raise
        except Exception as exc:
            interrupts.raise_if_requested(exc)
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
        self.log.record_checks(day, name, list(outcome.checks), self.clock())
        gate = self._gate(outcome)
        if gate is not None:
            self.log.end_step(
                day, name, "failed", attempts, self.clock(), outcome.rows, outcome.details, gate
            )
            log.error("%s %s failed: %s", name, day, gate)
            raise DataError(gate)
        self.log.end_step(
            day, name, "succeeded", attempts, self.clock(), outcome.rows, outcome.details
        )
        for check in outcome.checks:
            if check.outcome == WARN:
                log.warning("%s %s: WARN %s", name, day, check.line())
        log.info("%s %s ok (%s attempt(s), rows=%s)", name, day, attempts, outcome.rows)
        self.current = None
        return outcome

    def _gate(self, outcome: StepOutcome) -> str | None:
        """The error that fails the step for its checks, or None."""
        failed = [c for c in outcome.checks if c.outcome == FAIL]
        warned = [c for c in outcome.checks if c.outcome == WARN]
        if failed:
            return "check failed: " + "; ".join(c.line() for c in failed)
        if warned and self.fail_on_warning:
            return "warning treated as failure (--fail-on-warning): " + "; ".join(
                c.line() for c in warned
            )
        return None

    def run_range_step(
        self, days: Sequence[date], name: str, by_day: Mapping[date, DateResult]
    ) -> bool:
        """One range step over days[0]..days[-1], logged against each date; False (the first
        date marked failed) on a failure."""
        start, end = days[0], days[-1]
        started = time.monotonic()
        self.current = (start, name)
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
            interrupts.raise_if_requested(exc)
            error = exc
        except Exception as exc:
            interrupts.raise_if_requested(exc)
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
        self.current = None
        return True

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
            retry=retry_if_exception(
                lambda exc: isinstance(exc, TransientError) and not interrupts.requested()
            ),
            before=before,
            before_sleep=log_retry,
            sleep=self.sleep,
            reraise=True,
        )
