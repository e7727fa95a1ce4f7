"""Check a batch with the rules and write its rows to staging or the quarantine, in bulk.

The checked batch lands in a DuckDB temporary table. On DuckDB that is the warehouse's own
connection and the rows move on with INSERT ... SELECT: no row passes through Python or Arrow
after the check. On Azure SQL the rules run in a private in-memory DuckDB and the checked rows
go in with the warehouse's bulk insert (pyodbc fast_executemany, in batches, inside the
caller's transaction). The few lines the rules mark `needs_exact` (usage only) are read by
Python's strict parser and checked again with its verdicts (staging/exactjson.py).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from company_activity.errors import DataError, TerminalError
from company_activity.staging.exactjson import read_exactly
from company_activity.staging.limits import fits, text_limit
from company_activity.staging.rules import BATCH_VIEW, EXACT_VIEW, TRIM_CHARS
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.relations import Table
from company_activity.warehouse.schema import QUARANTINE

_CHECKED = "_stg_checked"
_RECHECKED = "_stg_rechecked"
# Small enough that a day's batch (about 20,000 rows at 20,000 companies) splits evenly over
# the cores: at 16,384 one thread checked almost all of it (CRM rules 48 ms -> 38 ms).
_SCAN_ROWS = 4_096
_FILE_NAME_LIMIT = text_limit(QUARANTINE, "src_file_name")
_REASON_MAX = QUARANTINE.column("reason").max_length or 400


@dataclass(frozen=True)
class Target:
    """Where one source lands: its staging table, date column, raw column and rules."""

    source: str  # 'crm' or 'usage', as in stg.quarantine and ops.load_audits
    table: Table
    date_column: str
    raw_column: str
    check_sql: str
    # The rules again, over the lines the check marks `needs_exact`, with Python's reading of
    # them joined (rules.EXACT_VIEW; see staging/exactjson.py).
    exact_check_sql: str | None = None
    # A column that names the field a staged row has NULL for an unreadable value.
    issue_column: str | None = None

    @property
    def staged_select(self) -> str:
        columns = ", ".join(self.table.column_names)
        return f"SELECT {columns} FROM {_CHECKED} WHERE reason IS NULL"

    @property
    def quarantine_select(self) -> str:
        return (
            f"SELECT $source AS source, {self.date_column} AS file_date, src_file_name, "
            f"src_line_number, q_company_id AS company_id, left(reason, {_REASON_MAX}) AS reason, "
            f"{self.raw_column} AS raw_line, run_id, loaded_at "
            f"FROM {_CHECKED} WHERE reason IS NOT NULL"
        )


class BatchWriter:
    """Applies a target's rules to batches and writes the outcome through one warehouse."""

    def __init__(self, wh: Warehouse, target: Target) -> None:
        self.wh = wh
        self.target = target
        self._direct = isinstance(wh, DuckDBWarehouse)
        # Azure SQL: the rules still run in DuckDB, a private in-memory one.
        self.con: duckdb.DuckDBPyConnection = (
            wh.con if isinstance(wh, DuckDBWarehouse) else duckdb.connect()
        )

    def write(self, batch: pa.Table, params: Mapping[str, Any]) -> None:
        """Check one batch; its accepted rows go to staging, the others to the quarantine."""
        if batch.num_rows == 0:
            return
        _check_file_name(params.get("src_file_name"))
        # Record batches of this size let DuckDB check them on all cores (slicing is free).
        batch = pa.Table.from_batches(batch.to_batches(max_chunksize=_SCAN_ROWS))
        # A temporary table, not an Arrow result: the two inserts below read it where it is
        # (the Arrow round trip cost as much as the rules themselves).
        params = {**params, "trim_chars": TRIM_CHARS}
        with self._registered(BATCH_VIEW, batch):
            self._execute(
                f"CREATE OR REPLACE TEMP TABLE {_CHECKED} AS {self.target.check_sql}", params
            )
        try:
            self._check_exactly(batch, params)
            quarantine_params = {"source": self.target.source}
            if self._direct:
                self._execute(f"INSERT INTO {_into(self.target.table)} {self.target.staged_select}")
                self._execute(
                    f"INSERT INTO {_into(QUARANTINE)} {self.target.quarantine_select}",
                    quarantine_params,
                )
                return
            staged = self._fetch(self.target.staged_select, {})
            rejected = self._fetch(self.target.quarantine_select, quarantine_params)
        finally:
            self._execute(f"DROP TABLE IF EXISTS {_CHECKED}")
        table = self.target.table
        self.wh.insert_rows(table.name, table.column_names, _rows(staged))
        self.wh.insert_rows(QUARANTINE.name, QUARANTINE.column_names, _rows(rejected))

    def _check_exactly(self, batch: pa.Table, params: Mapping[str, Any]) -> None:
        """Check again the few lines the rules marked `needs_exact`, with Python's reading of
        them joined; only those lines come back to Python."""
        sql = self.target.exact_check_sql
        if sql is None:
            return
        marked = self._fetch(
            f"SELECT src_line_number, {self.target.raw_column} FROM {_CHECKED} WHERE needs_exact",
            {},
        )
        if marked.num_rows == 0:
            return
        verdicts = read_exactly(marked)
        lines = batch.filter(pc.is_in(batch["src_line_number"], value_set=verdicts[0]))
        with self._registered(BATCH_VIEW, lines), self._registered(EXACT_VIEW, verdicts):
            self._execute(f"CREATE OR REPLACE TEMP TABLE {_RECHECKED} AS {sql}", params)
        try:
            self._execute(
                f"DELETE FROM {_CHECKED} WHERE src_line_number IN "
                f"(SELECT src_line_number FROM {_RECHECKED})"
            )
            self._execute(f"INSERT INTO {_CHECKED} SELECT * FROM {_RECHECKED}")
        finally:
            self._execute(f"DROP TABLE IF EXISTS {_RECHECKED}")

    def close(self) -> None:
        if not self._direct:
            self.con.close()

    @contextlib.contextmanager
    def _registered(self, name: str, data: pa.Table) -> Iterator[None]:
        self.con.register(name, data)
        try:
            yield
        finally:
            self.con.unregister(name)

    def _execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self.con.execute(sql, _used(sql, params or {}))
        except duckdb.Error as exc:
            raise self._error(exc) from None

    def _fetch(self, sql: str, params: Mapping[str, Any]) -> pa.Table:
        try:
            return self.con.sql(sql, params=_used(sql, params)).to_arrow_table()
        except duckdb.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: duckdb.Error) -> TerminalError:
        return TerminalError(f"staging {self.target.source} rows failed in DuckDB: {exc}")


def _check_file_name(name: object) -> None:
    """Every row carries its file's name: one that its column cannot hold fails the load."""
    if isinstance(name, str) and not fits(_FILE_NAME_LIMIT, name):
        raise DataError(
            f"the input name {name[:80]}... is longer than the {_FILE_NAME_LIMIT.size} "
            "characters src_file_name holds; load it from a shorter path."
        )


def _into(table: Table) -> str:
    return f"{table.name} ({', '.join(table.column_names)})"


def _used(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """DuckDB refuses named parameters a statement does not use."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


def _rows(data: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Arrow rows as tuples of Python values (dates, datetimes), a batch at a time."""
    for batch in data.to_batches(max_chunksize=10_000):
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)
