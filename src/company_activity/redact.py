"""Keep secrets out of logs and error messages.

Known secret values (registered when settings load) are masked wherever they appear, and
secret-looking fragments (keys in URLs or connection strings, bearer tokens) are masked even
when their value was never registered.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"

_PATTERNS = (
    # key=value pairs in query strings and connection strings
    re.compile(
        r"(?i)\b((?:api[_-]?key|access[_-]?token|token|sig|signature|code|password|pwd|"
        r"secret|client[_-]?secret|accountkey|sharedaccesssignature|key)\s*=\s*)([^&;\s\"']+)"
    ),
    re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]+)"),
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that redact() masks it from now on."""
    # Very short values would mask ordinary words; real secrets are never that short.
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: object) -> str:
    """Return str(text) with every known secret and secret-looking fragment masked."""
    result = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        result = result.replace(secret, MASK)
    for pattern in _PATTERNS:
        result = pattern.sub(lambda m: m.group(1) + MASK, result)
    return result


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Pre-render the traceback, redacted, so handlers never format the raw one.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
