"""argparse value types shared by the commands."""

from __future__ import annotations

import argparse
import re
from datetime import date

from company_activity.warehouse.migrations import CALENDAR_END, CALENDAR_START

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(text: str) -> date:
    """A YYYY-MM-DD date inside the calendar the warehouse holds, or a message saying so."""
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        value = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None
    # dim.calendar is the grid's spine: a date outside it would merge no rows.
    if not CALENDAR_START <= value <= CALENDAR_END:
        raise argparse.ArgumentTypeError(
            f"{text} is outside the warehouse calendar ({CALENDAR_START} .. {CALENDAR_END})"
        )
    return value
