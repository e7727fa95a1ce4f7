"""The Azure SQL bulk path of the staging loads, against a recording fake pyodbc connection.

No SQL Server exists offline, so this is the one place staging uses a test double: a fake
connection passed to AzureSqlWarehouse(conn_str, connect=...) records every statement, its
parameters, fast_executemany and each executemany batch, and answers the few queries the
loader asks (table existence, row counts) from what was inserted. The tests assert the
generated T-SQL, that rows go in with fast_executemany in batches inside the one transaction
(one commit, at the end), and that the rows are the ones the DuckDB path stages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity.errors import DataError, TransientError
from company_activity.staging import load_crm, load_usage
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.schema import CRM_COMPANIES, PRODUCT_USAGE, QUARANTINE, TABLES
from tests.test_load_usage import CONTAINER, DAY, LOADED_AT, fixed_clock, mixed, write_partition

FIXTURES = Path(__file__).parent / "fixtures" / "staging"


class FakeOdbcError(Exception):
    """Shaped like pyodbc.Error: args[0] is the SQLSTATE."""


class Recorder:
    """What the fake connection saw, in order, and the rows it holds per table."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self.count_offset = 0  # added to staged counts, to simulate a lost row
        self.fail_executemany: Exception | None = None
        # (statement kind, input sizes) for each statement sent with declared sizes
        self.sizes: list[tuple[str, list[Any]]] = []


class FakeCursor:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.fast_executemany = False
        self.rowcount = -1
        self.description: list[tuple[str]] | None = None
        self._result: list[tuple[Any, ...]] = []
        self._sizes: list[Any] | None = None

    def setinputsizes(self, sizes: list[Any]) -> None:
        self._sizes = list(sizes)

    def execute(self, sql: str, *params: Any) -> FakeCursor:
        if self._sizes is not None:
            self.recorder.sizes.append((sql, self._sizes))
        self.recorder.events.append(("execute", sql, params))
        self._result, self.description = [], None
        if "information_schema.tables" in sql:
            if "COUNT(*)" in sql:
                self._answer([(1,)])
            else:  # the whole catalogue: every declared table exists
                self._answer([tuple(t.name.split(".")) for t in TABLES])
        elif sql.startswith(("SELECT COUNT(*) FROM", "SELECT (SELECT COUNT(*) FROM")):
            self._answer(
                [tuple(self._count(t) for t in re.findall(r"COUNT\(\*\) FROM (\S+)", sql))]
            )
        elif sql.startswith("SELECT COUNT(issue_field) FROM stg.crm_companies"):
            issue = CRM_COMPANIES.column_names.index("issue_field")
            rows = self.recorder.rows.get(CRM_COMPANIES.name, [])
            self._answer([(sum(1 for r in rows if r[issue] is not None),)])
        elif sql.startswith("DELETE FROM"):
            self.rowcount = 0
        return self

    def _count(self, table: str) -> int:
        count = len(self.recorder.rows.get(table, []))
        if table == PRODUCT_USAGE.name:
            count += self.recorder.count_offset
        return count

    def _answer(self, rows: list[tuple[Any, ...]]) -> None:
        self._result, self.description = rows, [("value",)]

    def executemany(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        self.recorder.events.append(("executemany", sql, len(rows), self.fast_executemany))
        if self._sizes is not None:
            self.recorder.sizes.append((sql, self._sizes))
        if self.recorder.fail_executemany is not None:
            raise self.recorder.fail_executemany
        table = sql.split()[2]
        self.recorder.rows.setdefault(table, []).extend(rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._result


class FakeConnection:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.recorder)

    def commit(self) -> None:
        self.recorder.events.append(("commit",))

    def rollback(self) -> None:
        self.recorder.events.append(("rollback",))
        self.recorder.rows.clear()

    def close(self) -> None:
        self.recorder.events.append(("close",))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def azure(recorder: Recorder) -> AzureSqlWarehouse:
    def connect(conn_str: str, use_access_token: bool) -> FakeConnection:
        assert conn_str == "Driver={ODBC Driver 18 for SQL Server};Server=fake"
        return FakeConnection(recorder)

    wh = AzureSqlWarehouse("Driver={ODBC Driver 18 for SQL Server};Server=fake", connect=connect)
    wh.batch_size = 5  # force several batches per table
    return wh


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


def _kinds(events: list[tuple[Any, ...]]) -> list[str]:
    return [e[0] for e in events]


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def assert_staged_alike(recorder: Recorder, warehouse: DuckDBWarehouse) -> None:
    """The rows sent to Azure SQL equal those DuckDB staged, in both staging tables."""
    columns = ", ".join(PRODUCT_USAGE.column_names)
    duck = warehouse.query(f"SELECT {columns} FROM stg.product_usage ORDER BY src_line_number")
    assert sorted(recorder.rows[PRODUCT_USAGE.name], key=lambda r: r[7]) == duck
    q_columns = ", ".join(QUARANTINE.column_names)
    duck_q = warehouse.query(f"SELECT {q_columns} FROM stg.quarantine ORDER BY src_line_number")
    assert sorted(recorder.rows[QUARANTINE.name], key=lambda r: r[3]) == duck_q


def test_usage_load_statements_batches_and_one_commit(
    azure: AzureSqlWarehouse, recorder: Recorder, store: LocalFolderStore
) -> None:
    write_partition(store, DAY, [mixed()])
    result = load_usage(azure, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (27, 8, 19)
    events = recorder.events
    statements = [e[1] for e in events if e[0] == "execute"]
    # One writer per staging table: the transaction locks it before anything else.
    writes = [e for e in events if e[0] == "execute" and not e[1].startswith("SELECT")]
    lock = writes[0]
    assert lock[1].startswith("EXEC sp_executesql") and lock[2][1:] == (
        "company_activity:stg.product_usage",
        60_000,
    )
    # run_id goes as VARCHAR(64), its column's type (sqlserver_params).
    assert any(size == (12, 64, 0) for _, sizes in recorder.sizes for size in sizes)
    # Replace by date: delete the date's rows first, with the date bound as a parameter.
    deletes = [(e[1], e[2]) for e in events if e[0] == "execute" and e[1].startswith("DELETE")]
    assert deletes[:2] == [
        ("DELETE FROM stg.product_usage WHERE file_date = CAST(? AS DATE)", (DAY,)),
        (
            "DELETE FROM stg.quarantine WHERE source = ? AND file_date = CAST(? AS DATE)",
            ("usage", DAY),
        ),
    ]
    assert not any(re.search(r"'2025-11-23'|c000001", s) for s in statements), "values inlined"
    # Bulk: fast_executemany, batches of at most batch_size, never a statement per row.
    bulk = [e for e in events if e[0] == "executemany"]
    staged_batches = [
        e for e in bulk if e[1] == _insert_sql(PRODUCT_USAGE.name, PRODUCT_USAGE.column_names)
    ]
    rejected_batches = [
        e for e in bulk if e[1] == _insert_sql(QUARANTINE.name, QUARANTINE.column_names)
    ]
    assert [e[2] for e in staged_batches] == [5, 3]
    assert [e[2] for e in rejected_batches] == [5, 5, 5, 4]
    assert all(e[3] is True for e in bulk)
    assert not any(s.startswith("INSERT INTO stg.") for s in statements)
    # The audit row is written with bound values in the same transaction.
    audit_insert = next(
        e for e in events if e[0] == "execute" and "INSERT INTO ops.load_audits" in e[1]
    )
    assert "VALUES (?, ?, CAST(? AS DATE), ?" in audit_insert[1]
    assert audit_insert[2][:4] == ("run-1", "usage", DAY, "succeeded")
    # One transaction: a single commit, after everything else; no rollback.
    assert _kinds(events).count("commit") == 1
    assert events[-1] == ("commit",)
    assert "rollback" not in _kinds(events)


def test_azure_rows_equal_the_duckdb_rows(
    azure: AzureSqlWarehouse,
    recorder: Recorder,
    store: LocalFolderStore,
    warehouse: DuckDBWarehouse,
) -> None:
    write_partition(store, DAY, [mixed()])
    load_usage(azure, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)
    load_usage(warehouse, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)
    assert_staged_alike(recorder, warehouse)
    first = recorder.rows[PRODUCT_USAGE.name][0]
    assert isinstance(first[0], date) and isinstance(first[9], datetime)
    assert first[9] == LOADED_AT


def test_crm_load_on_azure(
    azure: AzureSqlWarehouse, recorder: Recorder, store: LocalFolderStore
) -> None:
    result = load_crm(
        azure,
        store,
        DAY,
        crm_blob_path="raw/crm/",
        run_id="run-1",
        file=FIXTURES / "crm_messy.csv",
        clock=fixed_clock,
    )
    assert (result.lines_staged, result.lines_rejected, result.fields_nulled) == (11, 6, 1)
    names = {r[8]: r[3] for r in recorder.rows["stg.crm_companies"]}
    assert names[4] == "株式会社テスト"
    assert names[5] == "Robert'); DROP TABLE stg.crm_companies;--"
    assert recorder.events[-1] == ("commit",)


def test_unbalanced_counts_roll_back_then_audit_the_failure(
    azure: AzureSqlWarehouse, recorder: Recorder, store: LocalFolderStore
) -> None:
    write_partition(store, DAY, [mixed()])
    recorder.count_offset = -1
    with pytest.raises(DataError, match="does not balance"):
        load_usage(azure, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)
    kinds = _kinds(recorder.events)
    rollback = kinds.index("rollback")
    assert "commit" not in kinds[:rollback]
    after = recorder.events[rollback + 1 :]
    audit = next(e for e in after if e[0] == "execute" and "INSERT INTO ops.load_audits" in e[1])
    assert audit[2][:4] == ("run-1", "usage", DAY, "failed")
    assert after[-1] == ("commit",)
    data = mixed()
    assert hashlib.sha256(data).hexdigest() in audit[2]


def test_a_transient_bulk_insert_error_rolls_back_and_stays_transient(
    azure: AzureSqlWarehouse, recorder: Recorder, store: LocalFolderStore
) -> None:
    write_partition(store, DAY, [mixed()])
    recorder.fail_executemany = FakeOdbcError("40001", "deadlock victim")
    with pytest.raises(TransientError, match=r"bulk insert into stg\.product_usage failed"):
        load_usage(azure, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)
    kinds = _kinds(recorder.events)
    assert "rollback" in kinds
    assert "commit" not in kinds[: kinds.index("rollback")]
