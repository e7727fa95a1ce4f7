"""The one retry policy for HTTP calls: which failures are retried, how long to wait, when to stop.

Only TransientError is retried (429, 5xx, connection failures, timeouts: the callers raise it).
Waits grow exponentially with jitter unless the server said how long to wait (`Retry-After`,
RFC 9110 section 10.2.3: seconds or an HTTP date). Attempts and total time are bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
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
# max_backoff_seconds (which also caps Retry-After).
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_JITTER_SECONDS = 1.0


class RetryableHttpError(TransientError):
    """A status the server may answer differently next time (429, 5xx)."""

    def __init__(self, message: str, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class GaveUp(TransientError):
    """Every attempt the policy allows failed transiently; `last` is the last failure."""

    def __init__(self, attempts: int, last: TransientError) -> None:
        super().__init__(f"gave up after {attempts} attempt(s) (last: {last})")
        self.attempts = attempts
        self.last = last


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date); None when absent,
    unreadable, zero or in the past, so that normal backoff applies."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or seconds <= 0:  # nothing to wait for
        return None
    return seconds


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
        Raises GaveUp (transient) when the bounds are reached; any other error at once.
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
                return float(min(retry_after, self.max_backoff_seconds))
            return float(backoff(state))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            if on_retry is not None and isinstance(error, TransientError):
                on_retry(error, seconds, state.attempt_number + 1)

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_retry_seconds),
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
            raise GaveUp(attempts, exc) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")
