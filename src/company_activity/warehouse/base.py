"""The warehouse interface that both engines implement.

All SQL handed to a warehouse is T-SQL with @name parameters. The DuckDB engine transpiles
it; the Azure SQL engine runs it as written. Values are always bound, never formatted in.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from company_activity.redact import redact
from company_activity.warehouse.tsql import split_batches

log = logging.getLogger(__name__)

Params = Mapping[str, Any]
Row = tuple[Any, ...]


class Warehouse(abc.ABC):
    """A connection to the warehouse, DuckDB or Azure SQL."""

    #: "duckdb" or "azuresql"
    engine: str
    #: rows per bulk-insert batch
    batch_size: int = 10_000

    def __init__(self) -> None:
        self._depth = 0
        self._locks: set[str] = set()

    # transactions ---------------------------------------------------------------------
    @contextmanager
    def transaction(self, *locks: str) -> Iterator[None]:
        """Run the block atomically; nested blocks join the outer transaction.

        `locks` name the tables the block writes: engines with concurrent writers (Azure
        SQL) take an exclusive, transaction-owned lock on each before the block runs, so two
        writers of one target take turns; the lock ends with the transaction. A lock not
        granted in time raises TransientError. When the block raises, the transaction is
        rolled back and the block's error is the one raised: a failed rollback (the session
        may already be gone, and the server has then rolled back) is only logged.
        """
        if self._depth:
            self._depth += 1
            try:
                self._acquire(locks)
                yield
            finally:
                self._depth -= 1
            return
        # BEGIN, the block and COMMIT all inside the try: an interrupt (KeyboardInterrupt)
        # landing between any two of them still rolls back and resets the depth, so the
        # connection is never left inside a transaction nobody ends (and later writes are
        # never swallowed by it).
        try:
            self._begin()
            self._depth = 1
            self._acquire(locks)
            yield
            self._depth = 0
            self._locks.clear()
            self._commit()
        except BaseException:
            self._depth = 0
            self._locks.clear()
            try:
                self._rollback()
            except Exception as exc:  # noqa: BLE001 - the block's error matters more
                log.warning("rollback failed after an error (%s)", redact(exc))
            raise

    def _acquire(self, locks: Sequence[str]) -> None:
        """Take the locks not held yet, in name order (one order everywhere: no cycles)."""
        for name in sorted(set(locks) - self._locks):
            self._lock(name)
            self._locks.add(name)

    def _lock(self, name: str) -> None:  # noqa: B027 - deliberately a no-op by default
        """Lock `name` until the transaction ends; engines with one writer need nothing."""

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None: ...

    # statements -----------------------------------------------------------------------
    @abc.abstractmethod
    def _run_batch(self, batch: str, params: Params) -> int:
        """Run one T-SQL batch; return rows affected by its last statement (or -1)."""

    @abc.abstractmethod
    def _query_batch(self, batch: str, params: Params) -> tuple[list[str], list[Row]]:
        """Run one T-SQL query; return column names and rows."""

    @abc.abstractmethod
    def execute_native(self, sql: str) -> None:
        """Run engine-specific SQL as written (DDL rendered for this engine)."""

    @abc.abstractmethod
    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Bulk-insert rows (in batches, never one statement per row); return the count."""

    def execute(self, tsql: str, params: Params | None = None) -> int:
        """Run a T-SQL script (batches split on GO) in one transaction."""
        total = 0
        with self.transaction():
            for batch in split_batches(tsql):
                affected = self._run_batch(batch, params or {})
                total += max(affected, 0)
        return total

    def run_file(self, path: str | Path, params: Params | None = None) -> int:
        """Run a .sql file of T-SQL in one transaction; return rows affected."""
        return self.execute(Path(path).read_text(encoding="utf-8"), params)

    def query(self, tsql: str, params: Params | None = None) -> list[Row]:
        """Run one T-SQL query and return its rows."""
        return self._query_batch(tsql, params or {})[1]

    def query_dicts(self, tsql: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Run one T-SQL query and return its rows as dicts keyed by column name."""
        names, rows = self._query_batch(tsql, params or {})
        return [dict(zip(names, row, strict=True)) for row in rows]

    def scalar(self, tsql: str, params: Params | None = None) -> Any:
        """Run a query and return the first column of its first row (None when empty)."""
        rows = self.query(tsql, params)
        return rows[0][0] if rows else None

    # catalogue ------------------------------------------------------------------------
    def table_columns(self, table: str) -> dict[str, tuple[str, str]]:
        """Map each column of schema.table to (data type, 'YES'/'NO' nullable)."""
        schema, name = table.split(".")
        rows = self.query(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = @schema AND table_name = @name",
            {"schema": schema, "name": name},
        )
        return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def table_exists(self, table: str, table_type: str | None = None) -> bool:
        """Whether schema.table exists (as `table_type`, e.g. 'BASE TABLE', when given)."""
        schema, name = table.split(".")
        sql = (
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = @schema AND table_name = @name"
        )
        params = {"schema": schema, "name": name}
        if table_type is not None:
            sql += " AND table_type = @table_type"
            params["table_type"] = table_type
        return bool(self.scalar(sql, params))

    def missing_tables(self, tables: Sequence[str]) -> list[str]:
        """The tables of `tables` (schema.table) that do not exist, in the order given."""
        found = {
            f"{r[0]}.{r[1]}"
            for r in self.query("SELECT table_schema, table_name FROM information_schema.tables")
        }
        return [t for t in tables if t not in found]

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
