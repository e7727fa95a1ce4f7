"""A progress bar over dates, drawn only on a terminal (logs and CI stay clean)."""

from __future__ import annotations

import threading
from typing import TextIO


class Progress:
    """`label [#####.....] 3/10 dates, 1 failed` on one redrawn line; silent off a TTY."""

    WIDTH = 30

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.enabled = total > 1 and stream.isatty()
        self.done = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._draw()

    def advance(self, ok: bool = True) -> None:
        with self._lock:
            self.done += 1
            self.failed += 0 if ok else 1
            self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH * self.done // max(self.total, 1)
        failed = f", {self.failed} failed" if self.failed else ""
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} dates{failed}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
