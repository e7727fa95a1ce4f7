"""The production engine: Azure SQL Database through pyodbc.

pyodbc (and unixODBC with Microsoft's ODBC driver) is imported only here, so the embedded
path works on machines without them.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

from company_activity.errors import ConfigError, TerminalError, TransientError
from company_activity.redact import redact
from company_activity.warehouse.base import Params, Row, Warehouse
from company_activity.warehouse.sqlserver_errors import (
    APPLOCK_NOT_GRANTED,
    classify,
    is_connection_error,
)
from company_activity.warehouse.sqlserver_params import (
    declared_table,
    insert_sizes,
    parameter_sizes,
)
from company_activity.warehouse.tsql import to_qmark

log = logging.getLogger(__name__)

# SQL_COPT_SS_ACCESS_TOKEN: the ODBC driver's attribute for an Azure AD access token.
_SQL_COPT_SS_ACCESS_TOKEN = 1256
_TOKEN_SCOPE = "https://database.windows.net/.default"  # noqa: S105 - a scope, not a secret


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
        raise classify(exc, "cannot connect to Azure SQL") from None


# How long a writer waits for another writer of the same target before giving up (the step
# then fails as transient, and the runner's retry tries again after its backoff).
LOCK_TIMEOUT_MS = 60_000
LOCK_PREFIX = "company_activity:"
# SERVERPROPERTY('EngineEdition') of a Synapse dedicated SQL pool (Microsoft's SERVERPROPERTY
# reference); 5 is Azure SQL Database, 8 a Managed Instance, 1-4 SQL Server.
SYNAPSE_EDITION = 6


APPLOCK_DECLARE = "DECLARE @lock_result INT;\nDECLARE @lock_message NVARCHAR(2048);"


def applock_tsql(resource: str, timeout: str) -> str:
    """T-SQL taking an exclusive, transaction-owned application lock, or raising.

    `resource` and `timeout` are T-SQL expressions (a parameter or a literal); the batch
    must declare APPLOCK_DECLARE's variables first. sp_getapplock returns 0 or 1 when the
    lock is granted and a negative number when it is not (-1 timed out, -2 cancelled, -3
    deadlock victim, -999 error): Microsoft's sp_getapplock reference
    (https://learn.microsoft.com/sql/relational-databases/system-stored-procedures/
    sp-getapplock-transact-sql). Not granted raises error APPLOCK_NOT_GRANTED, which the
    package classifies as transient. A transaction-owned lock ends with the transaction.
    """
    return (
        "EXEC @lock_result = sp_getapplock\n"
        f"    @Resource = {resource},\n"
        "    @LockMode = 'Exclusive',\n"
        "    @LockOwner = 'Transaction',\n"
        f"    @LockTimeout = {timeout};\n"
        "IF @lock_result < 0\n"
        "    BEGIN\n"
        "        SET @lock_message = CONCAT(\n"
        f"            N'lock on ', {resource}, N' not granted (sp_getapplock returned ',\n"
        "            @lock_result, N'): another writer holds it; retry later'\n"
        "        );\n"
        f"        THROW {APPLOCK_NOT_GRANTED}, @lock_message, 1;\n"
        "    END;"
    )


# Run through sp_executesql with the lock's T-SQL as a bound value: this engine reads every
# @name in a statement as a parameter, and the lock's T-SQL has variables of its own.
_LOCK_TSQL = APPLOCK_DECLARE + "\n" + applock_tsql("@lock_resource", "@lock_timeout_ms")
_LOCK_SQL = (
    "EXEC sp_executesql @lock_tsql, N'@lock_resource NVARCHAR(255), @lock_timeout_ms INT', "
    "@lock_resource, @lock_timeout_ms"
)


class AzureSqlWarehouse(Warehouse):
    """Azure SQL Database; the connection factory is injectable for offline tests.

    A connection-class error (the session dropped: SQLSTATE 08xxx, a failover, a TCP reset;
    see sqlserver_errors) closes the connection and raises TransientError; the next
    statement outside the failed transaction opens a new connection, so the runner's step
    retry starts on a live session. Inside the failed transaction nothing reconnects: its
    work is gone with the session, and a new session must not carry on as if it were not.
    """

    engine = "azuresql"

    def __init__(
        self,
        conn_str: str,
        use_access_token: bool = False,
        connect: Callable[[str, bool], Any] = connect_pyodbc,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        edition: int | None = None,
    ) -> None:
        super().__init__()
        self._conn_str = conn_str
        self._use_access_token = use_access_token
        self._connect = connect
        self.lock_timeout_ms = lock_timeout_ms
        self.reconnects = 0
        self._edition = edition  # asked of the server the first time it matters
        self._con: Any | None = connect(conn_str, use_access_token)

    # connection -----------------------------------------------------------------------
    @property
    def con(self) -> Any:
        """The live pyodbc connection, opened again after a connection-class error."""
        if self._con is None:
            if self._depth:
                raise TransientError(
                    "the Azure SQL session was lost inside this transaction (the server "
                    "rolled it back); the step is retried on a new connection"
                )
            # A fresh access token too: a long backfill outlives one.
            self._con = self._connect(self._conn_str, self._use_access_token)
            self.reconnects += 1
            log.info("reconnected to Azure SQL (reconnect %s)", self.reconnects)
        return self._con

    def _drop_connection(self) -> None:
        """Forget a connection whose session is gone (closing it may fail: ignore that)."""
        con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            except Exception as exc:  # noqa: BLE001 - the session is already gone
                log.debug("closing the lost connection failed: %s", redact(exc))

    def _driver_error(self, exc: Exception, what: str) -> Exception:
        """Classify a driver error; a lost session also drops the connection."""
        if is_connection_error(exc):
            self._drop_connection()
        return classify(exc, what)

    # transactions ---------------------------------------------------------------------
    def _begin(self) -> None:
        _ = self.con  # autocommit is off: a transaction is always open on a live connection

    def _commit(self) -> None:
        if self._con is None:
            raise TransientError(
                "the Azure SQL session was lost before COMMIT; the transaction was rolled back"
            )
        try:
            self._con.commit()
        except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
            # The outcome of a COMMIT cut off in flight is unknown; every step is
            # idempotent, so the retry is safe either way.
            raise self._driver_error(exc, "Azure SQL COMMIT failed") from None

    def _rollback(self) -> None:
        if self._con is None:
            return  # the session is gone, and the server rolled its transaction back
        try:
            self._con.rollback()
        except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
            raise self._driver_error(exc, "Azure SQL ROLLBACK failed") from None

    @property
    def is_synapse(self) -> bool:
        """True on a Synapse dedicated SQL pool (its engine edition), False on Azure SQL."""
        if self._edition is None:
            edition = self.scalar("SELECT CAST(SERVERPROPERTY('EngineEdition') AS INT)")
            self._edition = int(edition or 0)
        return self._edition == SYNAPSE_EDITION

    def run_autocommit(self, sql: str, params: Params | None = None) -> None:
        """Run one batch outside any transaction, committed as it runs.

        For DDL on a Synapse dedicated pool, which refuses it inside a user transaction
        (Microsoft's "Use transactions in dedicated SQL pool"). Raises TerminalError when
        called inside `transaction()`.
        """
        if self._depth:
            raise TerminalError("run_autocommit cannot run inside a transaction")
        con = self.con
        con.autocommit = True
        try:
            self._cursor_execute(sql, params or {})
        finally:
            if self._con is not None:
                self._con.autocommit = False

    def _lock(self, name: str) -> None:
        if self.is_synapse:
            # Dedicated pools have no sp_getapplock: docs/deploy.md says how writers are
            # kept apart there (one factory run at a time, no CLI writer beside it).
            log.debug("Synapse dedicated pool: no application lock on %s", name)
            return
        self._cursor_execute(
            _LOCK_SQL,
            {
                "lock_tsql": _LOCK_TSQL,
                "lock_resource": LOCK_PREFIX + name,
                "lock_timeout_ms": self.lock_timeout_ms,
            },
        )

    # statements -----------------------------------------------------------------------
    def _cursor_execute(self, batch: str, params: Params) -> Any:
        sql, names = to_qmark(batch)
        missing = sorted({n for n in names if n not in params})
        if missing:
            raise TerminalError(
                f"SQL parameter(s) not bound: {', '.join('@' + n for n in missing)}"
            )
        values = [params[n] for n in names]
        sizes = parameter_sizes(names, values)
        con = self.con
        try:
            cursor = con.cursor()
            if sizes is not None:
                cursor.setinputsizes(sizes)
            cursor.execute(sql, *values)
        except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
            raise self._driver_error(exc, "Azure SQL error") from None
        return cursor

    def _run_batch(self, batch: str, params: Params) -> int:
        cursor = self._cursor_execute(batch, params)
        return int(getattr(cursor, "rowcount", -1))

    def _query_batch(self, batch: str, params: Params) -> tuple[list[str], list[Row]]:
        cursor = self._cursor_execute(batch, params)
        names = [d[0] for d in cursor.description or ()]
        try:
            rows = [tuple(r) for r in cursor.fetchall()]
        except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
            raise self._driver_error(exc, "Azure SQL error") from None
        return names, rows

    def execute_native(self, sql: str) -> None:
        self._cursor_execute(sql, {})

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert with fast_executemany in batches of batch_size rows, inside the caller's
        transaction; text columns declared by their type (sqlserver_params.insert_sizes)."""
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
        sizes = insert_sizes(declared_table(table), columns)
        total = 0
        iterator = iter(rows)
        with self.transaction():
            cursor = self._bulk_cursor(table)
            while batch := [tuple(r) for r in islice(iterator, self.batch_size)]:
                try:
                    if sizes is not None:
                        cursor.setinputsizes(sizes)
                    cursor.executemany(sql, batch)
                except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
                    raise self._driver_error(exc, f"bulk insert into {table} failed") from None
                total += len(batch)
        return total

    def _bulk_cursor(self, table: str) -> Any:
        con = self.con
        try:
            cursor = con.cursor()
        except Exception as exc:  # noqa: BLE001 - pyodbc.Error, imported lazily
            raise self._driver_error(exc, f"bulk insert into {table} failed") from None
        cursor.fast_executemany = True
        return cursor

    def close(self) -> None:
        self._drop_connection()
