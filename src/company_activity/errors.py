"""The package's exceptions: one root, split into transient and terminal kinds.

Only transient errors are retried. Every message says what went wrong and what to do next,
and never carries a secret (callers redact before raising).
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error this package raises on purpose."""


class TransientError(PipelineError):
    """A failure that may succeed when retried (network, throttling, lock timeouts)."""


class TerminalError(PipelineError):
    """A failure that retrying cannot fix (bad configuration, bad data, a 4xx)."""


class ConfigError(TerminalError):
    """A setting is missing or invalid."""


class DataError(TerminalError):
    """Input data cannot be processed as it stands."""


class SqlContractError(TerminalError):
    """A T-SQL file breaks the dialect contract or cannot be transpiled."""
