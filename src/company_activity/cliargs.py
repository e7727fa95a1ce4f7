"""argparse value types and option checks shared by the commands."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from datetime import date

from company_activity.errors import ConfigError
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


def add_allow_future(parser: argparse.ArgumentParser) -> None:
    """--allow-future, for the commands that load a date into the warehouse."""
    parser.add_argument(
        "--allow-future",
        action="store_true",
        help="accept dates after today (UTC); without it such a date is refused as a typo",
    )


def refuse_future(days: Iterable[date], allow_future: bool, today: date) -> None:
    """Raise ConfigError naming the first date after `today` unless allow_future.

    The CLI reads the clock for `today` (input validation); nothing below it does. A date
    loaded by mistake stays in effect until `rollback --staging` undoes it (docs/runbook.md).
    """
    ahead = sorted(day for day in days if day > today)
    if ahead and not allow_future:
        raise ConfigError(
            f"{ahead[0]} is after today ({today}, UTC): check the date, or pass --allow-future "
            "if data for it really exists"
        )


def option(dest: str) -> str:
    """The command-line spelling of an argparse destination: `crm_end` -> `--crm-end`."""
    return "--" + dest.replace("_", "-")


def given(args: argparse.Namespace, dest: str) -> bool:
    """Whether the option was given (options that can be checked default to None or False)."""
    return getattr(args, dest, None) not in (None, False)


def reject_together(args: argparse.Namespace, first: str, *others: str, why: str = "") -> None:
    """ConfigError when `first` is given with any of `others`: one would silently win."""
    for other in others:
        if given(args, first) and given(args, other):
            reason = f": {why}" if why else ""
            together = "cannot be used together"
            raise ConfigError(f"{option(first)} and {option(other)} {together}{reason}")


def require(args: argparse.Namespace, needed: str, *dependents: str, why: str = "") -> None:
    """ConfigError when any of `dependents` is given without `needed`: it would do nothing."""
    for dependent in dependents:
        if given(args, dependent) and not given(args, needed):
            raise ConfigError(
                f"{option(dependent)} works only with {option(needed)}"
                + (f": {why}" if why else "")
            )
