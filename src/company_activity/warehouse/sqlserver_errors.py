"""Which SQL Server / Azure SQL errors are worth a retry, and which ones lose the connection.

pyodbc raises `pyodbc.Error` with the SQLSTATE in args[0] and the driver's message (ending in
the server's error number, e.g. "... (40613)") in args[1]. Sources for the numbers:
Microsoft's "Troubleshoot transient connection errors" page for Azure SQL Database
(https://learn.microsoft.com/azure/azure-sql/database/troubleshoot-common-errors-issues) and
the baseline transient error list of Microsoft.Data.SqlClient
(SqlConfigurableRetryFactory.BaselineTransientErrors), plus ODBC's SQLSTATE classes.
"""

from __future__ import annotations

import re

from company_activity.errors import TerminalError, TransientError
from company_activity.redact import redact

# SQLSTATE class 08 is "connection exception" in ODBC: the session is gone or never came up.
CONNECTION_SQLSTATE_CLASS = "08"
# SQLSTATEs worth a retry on the same connection: timeouts, serialization failures.
_TRANSIENT_SQLSTATES = frozenset({"HYT00", "HYT01", "40001"})
# Errors after which the session is unusable: the server or the network dropped it
# (20, 64, 233, 997: the transport; 10053/10054/10060: TCP aborts, resets and timeouts;
# 4060/40613/40197/40143/42108/42109: the database moved, failed over or is reconfiguring;
# 615/926: the database could not be opened).
CONNECTION_ERRORS = frozenset(
    {20, 64, 233, 615, 926, 997, 4060, 10053, 10054, 10060, 40143, 40197, 40613, 42108, 42109}
)
# Errors worth a retry on a live session: deadlock victim, lock request time-out, cannot
# obtain a lock resource, resource governance and throttling, failover of a secondary, and
# APPLOCK_NOT_GRANTED (raised by this package when sp_getapplock waited in vain).
APPLOCK_NOT_GRANTED = 51001
RETRY_ERRORS = frozenset(
    {
        1204,
        1205,
        1222,
        4221,
        10928,
        10929,
        40501,
        40540,
        49918,
        49919,
        49920,
        APPLOCK_NOT_GRANTED,
    }
)
# pyodbc's own wording when the driver reports a dropped link or a closed handle.
_CONNECTION_MESSAGES = re.compile(
    r"communication link failure|connection (?:is )?(?:closed|broken|reset)|"
    r"closed connection|tcp provider",
    re.IGNORECASE,
)
_ERROR_NUMBER = re.compile(r"\((\d{2,5})\)")


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE pyodbc put in args[0] ('' when there is none)."""
    args = getattr(exc, "args", ())
    return str(args[0]) if args and isinstance(args[0], str) else ""


def error_numbers(exc: BaseException) -> set[int]:
    """The server error numbers quoted in the driver's message, e.g. {40613}."""
    return {int(n) for n in _ERROR_NUMBER.findall(str(exc))}


def is_connection_error(exc: BaseException) -> bool:
    """True when the session is lost: a new connection is needed before anything else."""
    return (
        sqlstate(exc).startswith(CONNECTION_SQLSTATE_CLASS)
        or bool(error_numbers(exc) & CONNECTION_ERRORS)
        or bool(_CONNECTION_MESSAGES.search(str(exc)))
    )


def classify(exc: BaseException, what: str) -> TransientError | TerminalError:
    """The package error for a driver error: transient (retried) or terminal, redacted."""
    message = f"{what}: {redact(exc)}"
    if (
        is_connection_error(exc)
        or sqlstate(exc) in _TRANSIENT_SQLSTATES
        or error_numbers(exc) & RETRY_ERRORS
        or "deadlock" in message.lower()
    ):
        return TransientError(message)
    return TerminalError(message)
