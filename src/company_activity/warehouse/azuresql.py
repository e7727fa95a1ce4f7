"""The production engine: Azure SQL Database through pyodbc.

pyodbc (and unixODBC with Microsoft's ODBC driver) is imported only here, so the embedded
path works on machines without them.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

from company_activity.errors import ConfigError, TerminalError, TransientError
from company_activity.redact import redact
from company_activity.warehouse.base import Params, Row, Warehouse
from company_activity.warehouse.tsql import to_qmark

# SQL_COPT_SS_ACCESS_TOKEN: the ODBC driver's attribute for an Azure AD access token.
_SQL_COPT_SS_ACCESS_TOKEN = 1256
_TOKEN_SCOPE = "https://database.windows.net/.default"  # noqa: S105 - a scope, not a secret

# SQLSTATEs worth a retry: connection failures, timeouts, deadlocks and throttling.
_TRANSIENT_SQLSTATES = {"08S01", "08001", "08004", "HYT00", "HYT01", "40001", "40143", "40613"}
# SQL Server error numbers worth a retry, seen in the driver's message as "(1222)":
# deadlock victim, lock request time-out, and Azure SQL's documented transient errors
# (database unavailable, service busy, resource limits, failover).
_TRANSIENT_ERRORS = {
    1205,
    1222,
    4060,
    4221,
    10928,
    10929,
    40143,
    40197,
    40501,
    40540,
    40613,
    49918,
    49919,
    49920,
}
_ERROR_NUMBER = re.compile(r"\((\d{3,5})\)")


def access_token_attrs(token: str) -> dict[int, bytes]:
    """Encode an Azure AD token the way the ODBC driver expects (UTF-16-LE, length-prefixed)."""
    encoded = token.encode("utf-16-le")
    return {_SQL_COPT_SS_ACCESS_TOKEN: struct.pack(f"<I{len(encoded)}s", len(encoded), encoded)}


def connect_pyodbc(conn_str: str, use_access_token: bool) -> Any:
    """Open a pyodbc connection with autocommit off."""
    try:
        import pyodbc
    except ImportError as exc:
        raise ConfigError(
            "SQL_CONN_STR is set but pyodbc cannot load "
            f"({exc}). Install unixODBC and Microsoft's ODBC Driver 18 for SQL Server."
        ) from None
    attrs: dict[int, bytes] = {}
    if use_access_token:
        from azure.identity import DefaultAzureCredential

        token = DefaultAzureCredential().get_token(_TOKEN_SCOPE).token
        attrs = access_token_attrs(token)
    try:
        return pyodbc.connect(conn_str, autocommit=False, attrs_before=attrs or None)
    except pyodbc.Error as exc:
        raise _classify(exc, "cannot connect to Azure SQL") from None


def _classify(exc: Exception, what: str) -> Exception:
    state = str(exc.args[0]) if getattr(exc, "args", None) else ""
    message = f"{what}: {redact(exc)}"
    numbers = {int(n) for n in _ERROR_NUMBER.findall(message)}
    if (
        state in _TRANSIENT_SQLSTATES
        or numbers & _TRANSIENT_ERRORS
        or "deadlock" in message.lower()
    ):
        return TransientError(message)
    return TerminalError(message)


class AzureSqlWarehouse(Warehouse):
    """Azure SQL Database; the connection factory is injectable for offline tests."""

    engine = "azuresql"

    def __init__(
        self,
        conn_str: str,
        use_access_token: bool = False,
        connect: Callable[[str, bool], Any] = connect_pyodbc,
    ) -> None:
        super().__init__()
        self.con = connect(conn_str, use_access_token)

    def _begin(self) -> None:
        pass  # autocommit is off: a transaction is always open

    def _commit(self) -> None:
        self.con.commit()

    def _rollback(self) -> None:
        self.con.rollback()

    def _cursor_execute(self, batch: str, params: Params) -> Any:
        sql, names = to_qmark(batch)
        missing = sorted({n for n in names if n not in params})
        if missing:
            raise TerminalError(
                f"SQL parameter(s) not bound: {', '.join('@' + n for n in missing)}"
            )
        cursor = self.con.cursor()
        try:
            cursor.execute(sql, *[params[n] for n in names])
        except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
            raise _classify(exc, "Azure SQL error") from None
        return cursor

    def _run_batch(self, batch: str, params: Params) -> int:
        cursor = self._cursor_execute(batch, params)
        return int(getattr(cursor, "rowcount", -1))

    def _query_batch(self, batch: str, params: Params) -> tuple[list[str], list[Row]]:
        cursor = self._cursor_execute(batch, params)
        names = [d[0] for d in cursor.description or ()]
        return names, [tuple(r) for r in cursor.fetchall()]

    def execute_native(self, sql: str) -> None:
        self._cursor_execute(sql, {})

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert with fast_executemany in batches, inside the caller's transaction."""
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
        cursor = self.con.cursor()
        cursor.fast_executemany = True
        total = 0
        iterator = iter(rows)
        with self.transaction():
            while batch := [tuple(r) for r in islice(iterator, self.batch_size)]:
                try:
                    cursor.executemany(sql, batch)
                except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
                    raise _classify(exc, f"bulk insert into {table} failed") from None
                total += len(batch)
        return total

    def close(self) -> None:
        self.con.close()
