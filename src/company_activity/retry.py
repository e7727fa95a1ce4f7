"""The one retry policy for HTTP calls: which failures are retried, how long to wait, when to stop.

Only TransientError is retried (429, 5xx, connection failures, deadlines: the callers raise
it). Waits grow exponentially with jitter unless the server said how long to wait
(`Retry-After`, RFC 9110 section 10.2.3: seconds or an HTTP date). A Retry-After is a promise
kept: the next attempt is never sent before it, and when it asks for more than the policy's
longest wait or than what is left of its total time, the retries stop at once (GaveUp says
when the server said to come back). Attempts and total time are bounded.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from company_activity.errors import TransientError

T = TypeVar("T")

# Statuses worth retrying; any other 4xx/5xx is terminal at once.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Exponential backoff: 1 s, 2 s, 4 s, ... plus up to 1 s of jitter, capped by the policy's
# max_backoff_seconds (a longer Retry-After stops the retries instead).
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_JITTER_SECONDS = 1.0
# The longest Retry-After taken at its word: ten years. A longer one (up to the year 9999 of an
# HTTP date, or a string of digits no clock can add) stops the retries just the same, and
# capping it keeps "come back at" a date the clock can write.
MAX_RETRY_AFTER_SECONDS = 10 * 365 * 86_400.0
# RFC 9110's delay-seconds is 1*DIGIT; a decimal fraction is tolerated. Not `inf`, `1e3`, `+5`.
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class RetryableHttpError(TransientError):
    """A status the server may answer differently next time (429, 5xx)."""

    def __init__(self, message: str, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        # When the server said to come back (UTC), for messages; None without a Retry-After.
        self.come_back_at = (
            datetime.now(UTC) + timedelta(seconds=retry_after) if retry_after else None
        )
        self.hold: float | None = None  # NotBefore.hold()'s token, when one was taken


class GaveUp(TransientError):
    """The policy stopped retrying; `last` is the last failure.

    `refused_wait` is the Retry-After (seconds) that was not waited for because it asked for
    more than the longest wait or the time left allowed (None when attempts or time ran out).
    """

    def __init__(self, attempts: int, last: TransientError, refused_wait: float | None) -> None:
        super().__init__(f"gave up after {attempts} attempt(s) (last: {last})")
        self.attempts = attempts
        self.last = last
        self.refused_wait = refused_wait

    @property
    def come_back_at(self) -> datetime | None:
        """When the server said to come back (UTC), if its last answer said so."""
        return getattr(self.last, "come_back_at", None)


class NotBefore:
    """The earliest time the next request may go out, shared by the threads of one client.

    A Retry-After holds every thread, not only the one that received it. The thread that
    took a hold and waited it out releases it, so its own retry does not wait twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic() seconds

    def hold(self, seconds: float) -> float:
        """No request before `seconds` from now; returns a token for release()."""
        with self._lock:
            until = time.monotonic() + seconds
            self._until = max(self._until, until)
            return until

    def release(self, token: float) -> None:
        """The hold `token` was waited out (unless a later hold replaced it)."""
        with self._lock:
            if self._until == token:
                self._until = 0.0

    def wait(self, sleep: Callable[[float], None]) -> None:
        """Sleep until no hold remains."""
        with self._lock:
            remaining = self._until - time.monotonic()
        if remaining > 0:
            sleep(remaining)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 section 10.2.3: delay-seconds or an
    HTTP date), at most MAX_RETRY_AFTER_SECONDS; None when absent, unreadable (`inf`, `1e3`),
    zero or in the past, so that normal backoff applies."""
    if not value:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds <= 0:  # nothing to wait for
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying one call: attempts, total seconds, longest single wait."""

    max_attempts: int = 6
    max_retry_seconds: float = 300.0
    max_backoff_seconds: float = 60.0

    def run(
        self,
        attempt: Callable[[], T],
        *,
        sleep: Callable[[float], None],
        on_retry: Callable[[TransientError, float, int], None] | None = None,
    ) -> T:
        """attempt() until it returns, retrying TransientError within the bounds.

        `on_retry(error, wait_seconds, next_attempt_number)` is called before each wait.
        Raises GaveUp (transient) when the bounds are reached, or at once when a Retry-After
        asks for more than max_backoff_seconds or the time left; any other error at once.
        """
        backoff = wait_exponential_jitter(
            initial=BACKOFF_INITIAL_SECONDS,
            max=self.max_backoff_seconds,
            jitter=BACKOFF_JITTER_SECONDS,
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            if retry_after:
                return float(retry_after)  # a promise: never earlier, and never clipped
            return float(backoff(state))

        out_of_attempts = stop_after_attempt(self.max_attempts)
        out_of_time = stop_before_delay(self.max_retry_seconds)
        refused: list[float] = []

        def stop(state: RetryCallState) -> bool:
            if out_of_attempts(state):
                return True
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            if out_of_time(state) or (retry_after and retry_after > self.max_backoff_seconds):
                if retry_after:
                    refused.append(float(retry_after))
                return True
            return False

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            if on_retry is not None and isinstance(error, TransientError):
                on_retry(error, seconds, state.attempt_number + 1)

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop,
            wait=wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for state in retrying:
                with state:
                    attempts += 1
                    return attempt()
        except TransientError as exc:
            raise GaveUp(attempts, exc, refused[-1] if refused else None) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")
