"""Date planning: which of a run's dates are pending, and how they are grouped.

A date is done when its latest run got through `validate` (RunLog.completed_dates); a forced
run treats every date as pending. From `range_min_dates` pending dates on (when range steps are
wired) the run takes the backfill path, in chunks of `chunk_dates` pending dates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from company_activity.pipeline import names as step_names
from company_activity.pipeline.runlog import RunLog


@dataclass(frozen=True)
class DatePlan:
    """The run's dates in order, and those already completed."""

    dates: tuple[date, ...]
    done: frozenset[date]

    @property
    def pending(self) -> list[date]:
        return [d for d in self.dates if d not in self.done]

    @property
    def start(self) -> date:
        return min(self.dates)

    @property
    def end(self) -> date:
        return max(self.dates)

    def use_range_path(self, range_min_dates: int) -> bool:
        """True when enough dates are pending for the set-based merges to pay."""
        return len(self.pending) >= range_min_dates

    def chunks(self, chunk_dates: int) -> Iterator[list[date]]:
        """The pending dates, chunk_dates at a time, in order."""
        pending = self.pending
        for first in range(0, len(pending), chunk_dates):
            yield pending[first : first + chunk_dates]


def plan_dates(log: RunLog, dates: Sequence[date], force: bool) -> DatePlan:
    """The plan for these dates: completed ones are skipped unless forced."""
    start, end = min(dates), max(dates)
    done = set() if force else log.completed_dates(step_names.VALIDATE, start, end)
    return DatePlan(tuple(dates), frozenset(done))
