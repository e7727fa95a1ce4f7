"""Run identity and logging: every run has an id that lands on its rows and log lines."""

from __future__ import annotations

import logging
import sys
import uuid

from company_activity.redact import RedactingFilter

_FORMAT = "%(asctime)s %(levelname)s [run %(run_id)s] %(name)s: %(message)s"


def new_run_id() -> str:
    """A fresh, unique run id (32 hex digits)."""
    return uuid.uuid4().hex


class _RunIdFilter(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_id"):
            record.run_id = self.run_id
        return True


def configure_logging(run_id: str, level: str = "INFO", stream: object = None) -> None:
    """Send redacted log lines, tagged with the run id, to stderr (or the given stream)."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_RunIdFilter(run_id))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_company_activity", False):
            root.removeHandler(old)
    handler._company_activity = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The Azure SDK logs request details (headers included) at INFO; keep it quiet.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
