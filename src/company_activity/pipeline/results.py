"""What steps, dates and runs report: the runner's result types and step signatures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from company_activity.model.checks import WARN, CheckResult
from company_activity.pipeline import names as step_names
from company_activity.pipeline.notify import RunMessage


@dataclass
class StepOutcome:
    """What a step reports: the rows it touched, any counts worth keeping, and the results
    of the data-quality checks it ran (model/checks.py; the runner stores and gates on them)."""

    rows: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()


StepFn = Callable[[date], StepOutcome]
RangeStepFn = Callable[[date, date], StepOutcome]
Notifier = Callable[[RunMessage], bool]


@dataclass
class DateResult:
    """The outcome of one date."""

    day: date
    status: str  # succeeded | failed | skipped | interrupted
    seconds: float = 0.0
    outcomes: dict[str, StepOutcome] = field(default_factory=dict)
    failing_step: str | None = None
    error: str | None = None
    transient: bool = False

    @property
    def warnings(self) -> list[CheckResult]:
        """The checks of this date that warned."""
        return [c for o in self.outcomes.values() for c in o.checks if c.outcome == WARN]

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
        warnings = self.warnings
        verdict = "WARN" if warnings else "ok"
        reasons = "  warnings: " + "; ".join(c.line() for c in warnings) if warnings else ""
        return f"{self.day}  {verdict}  {' '.join(parts)}  {self.seconds:.1f}s{reasons}"


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

    @property
    def warnings(self) -> list[tuple[date, CheckResult]]:
        """Every warning of the run's dates, in date order."""
        return [(d.day, c) for d in self.dates for c in d.warnings]
