"""The embedded engine: a DuckDB file, running our T-SQL through sqlglot."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from company_activity.errors import ConfigError, TerminalError, TransientError
from company_activity.warehouse.base import Params, Row, Warehouse
from company_activity.warehouse.tsql import transpile_batch

# DuckDB checkpoints the write-ahead log into the file once it passes 16 MB; a day's staging
# load writes a few MB, so a backfill paused for a checkpoint every other date (150-200 ms a
# date, docs/performance.md). A larger threshold checkpoints less often; the price is a longer
# log to replay after a crash, which DuckDB does on its own when the file is next opened.
CHECKPOINT_THRESHOLD = "256MB"


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (or ':memory:')."""

    engine = "duckdb"

    def __init__(
        self, path: str | Path, memory_limit: str | None = None, read_only: bool = False
    ) -> None:
        """Open (read_only False: create if need be) the DuckDB file at path.

        Raises TransientError when another process holds the file's lock (run again later),
        TerminalError when no retry can help: the folder cannot be written, the file is not a
        DuckDB database, or (read_only) there is no file yet.
        """
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            if read_only and not Path(self.path).is_file():
                raise TerminalError(
                    f"no warehouse at {self.path}: run `company-activity init-db` first "
                    "(or set DUCKDB_PATH to the warehouse file)"
                )
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TerminalError(_unwritable(self.path, exc.strerror or str(exc))) from None
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from None
        self.con.execute("SET checkpoint_threshold = $size", {"size": CHECKPOINT_THRESHOLD})
        if memory_limit:
            self._limit_memory(memory_limit)

    def _limit_memory(self, memory_limit: str) -> None:
        """Cap DuckDB's memory (its default is 80% of RAM); past the cap it spills to disk.

        A file database spills to its default temp folder, `<file>.tmp` beside it.
        """
        try:
            self.con.execute("SET memory_limit = $limit", {"limit": memory_limit})
        except duckdb.Error as exc:
            self.con.close()
            raise ConfigError(
                f"DUCKDB_MEMORY_LIMIT={memory_limit!r} is not a memory size DuckDB accepts "
                f"({exc}); write it like 2GB or 512MB"
            ) from None

    def _begin(self) -> None:
        self.con.begin()

    def _commit(self) -> None:
        self.con.commit()

    def _rollback(self) -> None:
        # A failed statement may already have ended the transaction.
        with contextlib.suppress(duckdb.Error):
            self.con.rollback()

    def _execute(self, sql: str, names: Sequence[str], params: Params) -> duckdb.DuckDBPyConnection:
        missing = [n for n in names if n not in params]
        if missing:
            raise TerminalError(
                f"SQL parameter(s) not bound: {', '.join('@' + n for n in missing)}"
            )
        bound = {name: params[name] for name in names}
        try:
            return self.con.execute(sql, bound) if bound else self.con.execute(sql)
        except duckdb.TransactionException as exc:
            raise TransientError(f"DuckDB transaction conflict: {exc}") from None
        except duckdb.Error as exc:
            raise TerminalError(f"DuckDB error: {exc}") from None

    def _run_batch(self, batch: str, params: Params) -> int:
        affected = -1
        for statement in transpile_batch(batch):
            cursor = self._execute(statement.sql, statement.params, params)
            affected = _rowcount(cursor)
        return affected

    def _query_batch(self, batch: str, params: Params) -> tuple[list[str], list[Row]]:
        statements = transpile_batch(batch)
        for statement in statements[:-1]:
            self._execute(statement.sql, statement.params, params)
        last = statements[-1]
        cursor = self._execute(last.sql, last.params, params)
        names = [d[0] for d in cursor.description or ()]
        return names, [tuple(r) for r in cursor.fetchall()]

    def execute_native(self, sql: str) -> None:
        try:
            self.con.execute(sql)
        except duckdb.Error as exc:
            raise TerminalError(f"DuckDB error: {exc}") from None

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert through Arrow batches: DuckDB's bulk path, not a statement per row."""
        column_list = ", ".join(columns)
        total = 0
        iterator = iter(rows)
        with self.transaction():
            while batch := list(islice(iterator, self.batch_size)):
                arrays = list(zip(*batch, strict=True))
                arrow_batch = pa.table(
                    {name: list(values) for name, values in zip(columns, arrays, strict=True)}
                )
                self.insert_arrow(table, arrow_batch, columns=columns, column_list=column_list)
                total += len(batch)
        return total

    def insert_arrow(
        self,
        table: str,
        data: pa.Table,
        columns: Sequence[str] | None = None,
        column_list: str | None = None,
    ) -> int:
        """Insert an Arrow table whose column names match the target's."""
        names = list(columns or data.column_names)
        column_list = column_list or ", ".join(names)
        self.con.register("_arrow_insert", data)
        try:
            self._execute(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM _arrow_insert",
                (),
                {},
            )
        finally:
            self.con.unregister("_arrow_insert")
        return int(data.num_rows)

    def close(self) -> None:
        self.con.close()


def _open_error(path: str, exc: duckdb.Error) -> TransientError | TerminalError:
    """What opening the file failed on, and what to do (DuckDB says it only in the message)."""
    message = str(exc)
    if "lock" in message.lower():
        # Another process has the file open for writing: worth running again later.
        return TransientError(f"the DuckDB file {path} is in use by another process: {message}")
    if "not a valid DuckDB database file" in message:
        return TerminalError(
            f"{path} is not a DuckDB database file: set DUCKDB_PATH to the warehouse file, or "
            "to a new path and run `company-activity init-db`"
        )
    return TerminalError(_unwritable(path, message))


def _unwritable(path: str, reason: str) -> str:
    return (
        f"cannot open or create the DuckDB file {path} ({reason}): make its folder writable, "
        "or set DUCKDB_PATH to a writable place"
    )


def _rowcount(cursor: duckdb.DuckDBPyConnection) -> int:
    """DuckDB reports DML row counts as a one-row result named 'Count'."""
    try:
        description = cursor.description
        if description and len(description) == 1 and description[0][0] == "Count":
            row = cursor.fetchone()
            return int(row[0]) if row else -1  # type: ignore[index]
    except duckdb.Error:
        return -1
    return -1
