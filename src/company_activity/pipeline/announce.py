"""A run's one notification: decided once, sent once, whatever ends the run.

NOTIFY_ON chooses which outcomes notify: a failed or interrupted run always does; a run with
warnings does unless NOTIFY_ON=failures; a clean success only with NOTIFY_ON=always. The first
decision is final, so a run that failed, was then interrupted while closing its log, never
sends two messages. Sending happens with signals deferred (interrupts.py): a message is never
cut off half way.
"""

from __future__ import annotations

import logging

from company_activity.errors import TerminalError
from company_activity.pipeline import interrupts
from company_activity.pipeline.notify import RunMessage
from company_activity.pipeline.results import Notifier
from company_activity.redact import redact

log = logging.getLogger(__name__)

NOTIFY_ON = ("failures", "warnings", "always")


class Announcer:
    """Sends at most one notification for a run."""

    def __init__(self, notifier: Notifier, notify_on: str = "always") -> None:
        if notify_on not in NOTIFY_ON:
            raise TerminalError(f"notify_on must be one of {', '.join(NOTIFY_ON)}")
        self.notifier = notifier
        self.notify_on = notify_on
        self.decided: str | None = None  # delivered | undelivered | not sent (...)

    def wanted(self, message: RunMessage) -> bool:
        if message.status != "succeeded":
            return True
        if message.warnings:
            return self.notify_on != "failures"
        return self.notify_on == "always"

    def announce(self, message: RunMessage) -> str:
        """Send the run's message if NOTIFY_ON wants it and none was decided yet; return what
        happened: delivered, undelivered, not sent (NOTIFY_ON=...) or already decided."""
        if self.decided is not None:
            return "already decided"
        if not self.wanted(message):
            self.decided = f"not sent (NOTIFY_ON={self.notify_on})"
            return self.decided
        self.decided = "undelivered"
        with interrupts.deferred():
            try:
                delivered = self.notifier(message)
            except Exception as exc:  # noqa: BLE001 - a notifier never changes the run's outcome
                log.warning("notification failed: %s", redact(exc))
                delivered = False
            self.decided = "delivered" if delivered else "undelivered"
        return self.decided
