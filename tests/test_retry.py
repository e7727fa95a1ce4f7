"""The one retry policy (company_activity.retry) on its own: waits are recorded, not slept."""

from __future__ import annotations

import pytest

from company_activity.errors import TerminalError, TransientError
from company_activity.retry import (
    GaveUp,
    HeldBack,
    NotBefore,
    RetryableHttpError,
    RetryPolicy,
    utc_text,
)


def run(policy: RetryPolicy, errors: list[Exception]) -> tuple[list[float], GaveUp | str]:
    waits: list[float] = []

    def attempt() -> str:
        if errors:
            raise errors.pop(0)
        return "done"

    try:
        return waits, policy.run(attempt, sleep=waits.append)
    except GaveUp as exc:
        return waits, exc


def test_retry_after_is_waited_exactly_never_clipped_or_shortened() -> None:
    policy = RetryPolicy(max_attempts=5, max_retry_seconds=100, max_backoff_seconds=10)
    errors: list[Exception] = [
        RetryableHttpError("HTTP 429", 429, 3.5),
        RetryableHttpError("HTTP 503", 503, 10.0),
    ]
    waits, outcome = run(policy, errors)
    assert outcome == "done" and waits == [3.5, 10.0]


@pytest.mark.parametrize(
    ("retry_after", "longest_wait", "total"),
    [(11.0, 10.0, 100.0), (30.0, 60.0, 20.0)],
)
def test_a_retry_after_beyond_the_bounds_stops_at_once(
    retry_after: float, longest_wait: float, total: float
) -> None:
    policy = RetryPolicy(max_attempts=5, max_retry_seconds=total, max_backoff_seconds=longest_wait)
    waits, outcome = run(policy, [RetryableHttpError("HTTP 429", 429, retry_after)])
    assert waits == []
    assert isinstance(outcome, GaveUp)
    assert outcome.attempts == 1 and outcome.refused_wait == retry_after
    assert outcome.come_back_at is not None


def test_attempts_run_out_and_terminal_errors_pass_through() -> None:
    policy = RetryPolicy(max_attempts=3)
    waits, outcome = run(policy, [TransientError("a"), TransientError("b"), TransientError("c")])
    assert isinstance(outcome, GaveUp) and outcome.attempts == 3 and outcome.refused_wait is None
    assert len(waits) == 2 and str(outcome.last) == "c"
    with pytest.raises(TerminalError):
        run(policy, [TerminalError("no")])


def test_not_before_holds_every_caller_until_released() -> None:
    gate = NotBefore()
    waits: list[float] = []
    gate.wait(waits.append, longest=10)
    assert waits == []
    token = gate.hold(5.0)
    gate.wait(waits.append, longest=10)
    assert len(waits) == 1 and 4.0 < waits[0] <= 5.0
    with pytest.raises(HeldBack) as caught:
        gate.wait(waits.append, longest=1)
    assert 4.0 < caught.value.retry_after <= 5.0
    later = gate.hold(8.0)
    gate.release(token)  # replaced by a later hold: still held
    with pytest.raises(HeldBack):
        gate.wait(waits.append, longest=1)
    gate.release(later)
    gate.wait(waits.append, longest=1)
    assert len(waits) == 1


def test_utc_text_rounds_up() -> None:
    from datetime import UTC, datetime

    assert utc_text(datetime(2025, 11, 23, 9, 0, 0, 1, tzinfo=UTC)) == "2025-11-23T09:00:01Z"
    assert utc_text(datetime(2025, 11, 23, 9, 0, 0, tzinfo=UTC)) == "2025-11-23T09:00:00Z"
