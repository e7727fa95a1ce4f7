"""Calendar helpers shared by the commands, the runner and the model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from company_activity.errors import DataError


def date_range(start: date, end: date) -> list[date]:
    """Every date from start to end, both included."""
    if end < start:
        raise DataError(f"the end date {end} is before the start date {start}; swap them")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def as_date(value: object) -> date:
    """A DATE column's value as a date, whatever the driver returned (date, datetime, text)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def utc_now() -> datetime:
    """The wall clock, for audit columns only: business logic takes dates as parameters."""
    return datetime.now(UTC).replace(tzinfo=None)
