"""Interrupts (Ctrl-C, SIGTERM) end a run the same way wherever they land.

The handler records the signal and raises KeyboardInterrupt. Code that catches exceptions
asks `requested()` first: DuckDB reports an interrupt that lands inside a query as
RuntimeError('Query interrupted'), and a loader may wrap that in its own error; either is an
interrupt, not a failure. Inside `deferred()` (sending the run's notification, closing its
log) a signal is only recorded, and KeyboardInterrupt is raised when the block ends; a second
signal meanwhile interrupts at once (Ctrl-C twice never waits for a slow webhook).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class _State:
    """Signals received, and whether they are held (deferred) right now."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.depth = 0
        self.pending = False


_state = _State()


def install() -> None:
    """Handle SIGINT and SIGTERM (a scheduler's kill, a container stop) alike; forget any
    signal recorded before."""
    _state.received.clear()
    _state.depth, _state.pending = 0, False
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def _handle(signum: int, frame: FrameType | None) -> None:
    _state.received.append(signum)
    if _state.depth and not _state.pending:
        _state.pending = True  # a second signal does not wait: it interrupts at once
        return
    raise KeyboardInterrupt


def requested() -> bool:
    """True once SIGINT or SIGTERM arrived in this process (since install())."""
    return bool(_state.received)


def description() -> str:
    """'interrupted (SIGTERM)' and the like, for logs and notifications."""
    if not _state.received:
        return "interrupted"
    return f"interrupted ({signal.Signals(_state.received[0]).name})"


def raise_if_requested(exc: BaseException) -> None:
    """Turn an exception caused by an interrupt back into KeyboardInterrupt."""
    if _state.received and not isinstance(exc, KeyboardInterrupt):
        raise KeyboardInterrupt from exc


@contextmanager
def deferred() -> Iterator[None]:
    """Hold signals for the block; one that arrived meanwhile interrupts right after it."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if not _state.depth and _state.pending:
            _state.pending = False
            raise KeyboardInterrupt


def settle() -> None:
    """Ignore SIGINT and SIGTERM from now on: the process has finished and is exiting."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
