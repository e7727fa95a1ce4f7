"""The Synapse dedicated SQL pool variant: DDL (sql/ddl/synapse.sql) and procedures.

Checked the way the Azure SQL path is: generated from the one declaration, current, parsed by
sqlfluff's T-SQL grammar, and free of every construct dedicated pools reject (FORBIDDEN, each
with the Microsoft reference page that says so).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlfluff

from company_activity.azure import procedures, synapse_deploy
from company_activity.azure import synapse as ddl_synapse
from company_activity.warehouse.ddl import full_tsql_script
from company_activity.warehouse.relations import Table
from company_activity.warehouse.schema import TABLES
from company_activity.warehouse.tsql import split_batches

SCRIPT = Path(__file__).resolve().parents[1] / "sql" / "ddl" / "synapse.sql"


def test_checked_in_script_is_current() -> None:
    assert SCRIPT.read_text(encoding="utf-8") == ddl_synapse.full_script(), (
        "sql/ddl/synapse.sql is stale: regenerate it with `python -c 'from "
        'company_activity.azure.synapse import full_script as f; print(f(), end="")\' '
        "> sql/ddl/synapse.sql`"
    )


def test_script_passes_sqlfluff_tsql() -> None:
    result = sqlfluff.lint(
        SCRIPT.read_text(encoding="utf-8"),
        dialect="tsql",
        config_path=str(SCRIPT.parents[2] / ".sqlfluff"),
    )
    assert result == []


def _create(name: str) -> str:
    script = ddl_synapse.full_script()
    return next(b for b in split_batches(script) if f"CREATE TABLE {name} (" in b)


def test_every_declared_table_and_column_is_created() -> None:
    script = ddl_synapse.full_script()
    for table in TABLES:
        batch = _create(table.name)
        for column in table.columns:
            null = "NULL" if column.nullable else "NOT NULL"
            collate = f" COLLATE {column.collation}" if column.collation else ""
            sql_type = column.sql_type.replace(",", ", ")
            assert f"{column.name} {sql_type}{collate} {null}" in batch
        assert f"IF OBJECT_ID('{table.name}', 'U') IS NULL" in batch
        if table.primary_key:
            key = ", ".join(table.primary_key)
            assert f"PRIMARY KEY NONCLUSTERED ({key}) NOT ENFORCED" in script


def test_tables_with_company_id_are_hash_distributed_on_it() -> None:
    for table in TABLES:
        option = re.search(r"DISTRIBUTION = ([A-Z_]+(?: \(\w+\))?)", _create(table.name))
        assert option is not None
        if "company_id" in table.column_names:
            assert option.group(1) == "HASH (company_id)", table.name
        else:
            assert option.group(1) in ("ROUND_ROBIN", "REPLICATE"), table.name
    assert "REPLICATE" in _create("dim.calendar")


def test_columnstore_except_where_a_max_column_forbids_it() -> None:
    for table in TABLES:
        batch = _create(table.name)
        if any(c.sql_type.endswith("(MAX)") for c in table.columns):
            assert batch.rstrip().endswith("HEAP);"), table.name
        else:
            assert batch.rstrip().endswith("CLUSTERED COLUMNSTORE INDEX);"), table.name
    assert "CLUSTERED COLUMNSTORE INDEX" in _create("analytics.company_activity_metrics")


def test_nothing_is_ever_dropped() -> None:
    # A word, not a substring: the column has_usage_drop is no DROP statement.
    assert re.search(r"\bDROP\s", ddl_synapse.full_script(), re.IGNORECASE) is None


# What dedicated pools reject, each with the Microsoft reference page that says so. -------------

_MERGE_PAGE = "https://learn.microsoft.com/sql/t-sql/statements/merge-transact-sql"
_TRANSACTIONS_PAGE = "https://learn.microsoft.com/azure/synapse-analytics/sql/develop-transactions"
_CONSTRAINTS_PAGE = (
    "https://learn.microsoft.com/azure/synapse-analytics/sql-data-warehouse/"
    "sql-data-warehouse-table-constraints"
)
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    (
        "CREATE OR ALTER",
        r"\bCREATE\s+OR\s+ALTER\b",
        "https://learn.microsoft.com/sql/t-sql/statements/create-procedure-transact-sql "
        "(Synapse syntax: CREATE { PROC | PROCEDURE }); create-view-transact-sql likewise",
    ),
    (
        "sp_getapplock",
        r"\bsp_getapplock\b",
        "https://learn.microsoft.com/sql/relational-databases/system-stored-procedures/"
        "sp-getapplock-transact-sql (applies to SQL Server, Azure SQL Database, Managed Instance)",
    ),
    (
        "DROP ... IF EXISTS",
        r"\bDROP\s+\w+\s+IF\s+EXISTS\b",
        "https://learn.microsoft.com/sql/t-sql/statements/drop-procedure-transact-sql "
        "(Synapse syntax has no IF EXISTS)",
    ),
    ("a savepoint", r"\bSAVE\s+TRAN", f"{_TRANSACTIONS_PAGE} (limitations: no save points)"),
    (
        "a named, marked or distributed transaction",
        r"\bBEGIN\s+DISTRIBUTED\b|\bBEGIN\s+TRAN(?:SACTION)?[ \t]+[A-Za-z_@]",
        f"{_TRANSACTIONS_PAGE} (limitations)",
    ),
    (
        "an enforced primary key",
        r"\bPRIMARY\s+KEY\b(?!\s+NONCLUSTERED\s*\([^)]*\)\s*NOT\s+ENFORCED)",
        f"{_CONSTRAINTS_PAGE} (PRIMARY KEY only NONCLUSTERED and NOT ENFORCED)",
    ),
    (
        "an enforced unique constraint",
        r"\bUNIQUE\b(?:\s+NONCLUSTERED)?\s*\((?![^)]*\)\s*NOT\s+ENFORCED)",
        f"{_CONSTRAINTS_PAGE} (UNIQUE only NOT ENFORCED)",
    ),
    ("a foreign key", r"\bFOREIGN\s+KEY\b", f"{_CONSTRAINTS_PAGE} (no foreign keys)"),
    (
        "a table hint",
        r"\bWITH\s*\(\s*(?:NOLOCK|HOLDLOCK|UPDLOCK|TABLOCKX?|ROWLOCK|PAGLOCK|READPAST|"
        r"SERIALIZABLE|XLOCK)\b",
        f"{_MERGE_PAGE} (the Synapse MERGE syntax has no merge hint)",
    ),
    (
        "an OUTPUT clause",
        r"\bOUTPUT\s+(?:inserted|deleted|\$action)\b",
        f"{_MERGE_PAGE} (the Synapse MERGE syntax has no OUTPUT clause)",
    ),
    (
        "an IDENTITY column",
        r"\bIDENTITY\s*\(",
        f"{_MERGE_PAGE} (WHEN NOT MATCHED ... INSERT is not supported on IDENTITY tables)",
    ),
)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_DDL = re.compile(r"\b(?:CREATE|ALTER|DROP|TRUNCATE)\s+(?!PROCEDURE\b)\w", re.IGNORECASE)


def _code(sql: str) -> str:
    return _COMMENT.sub(" ", sql)


def violations(sql: str) -> list[str]:
    """Each construct of FORBIDDEN (and the structural rules below) found in `sql`."""
    code = _code(sql)
    found = [
        f"{name} ({reference})"
        for name, pattern, reference in FORBIDDEN
        if re.search(pattern, code, re.IGNORECASE)
    ]
    for statement in code.split(";"):
        words = statement.strip().upper()
        if words.startswith("WITH ") and re.search(r"\bMERGE\b", words):
            found.append(f"a CTE before MERGE ({_MERGE_PAGE}, Synapse remarks)")
    # DDL cannot run inside a user transaction in a dedicated pool.
    for inside in re.findall(
        r"BEGIN\s+TRAN(?:SACTION)?\s*;(.*?)COMMIT", code, re.IGNORECASE | re.DOTALL
    ):
        if _DDL.search(inside):
            found.append(f"DDL inside a user transaction ({_TRANSACTIONS_PAGE})")
    return found


SYNAPSE_PROCEDURES = [synapse_deploy.procedure_sql(p) for p in procedures.render_all()]


def test_the_checker_finds_what_azure_sql_accepts_and_dedicated_pools_reject() -> None:
    azure_procedure = procedures.render_all()[0].create_sql()
    found = " ".join(violations(azure_procedure))
    assert "CREATE OR ALTER" in found and "sp_getapplock" in found
    assert "enforced primary key" in " ".join(violations(full_tsql_script()))
    assert violations("BEGIN TRANSACTION;\nCREATE TABLE t (a INT);\nCOMMIT;")
    assert violations("WITH s AS (SELECT 1 AS a) MERGE INTO t USING s ON 1 = 1;")


def test_the_synapse_ddl_holds_nothing_dedicated_pools_reject() -> None:
    assert violations(ddl_synapse.full_script()) == []
    assert not re.search(r"\bBEGIN\s+TRAN", ddl_synapse.full_script(), re.IGNORECASE)


@pytest.mark.parametrize("text", SYNAPSE_PROCEDURES, ids=lambda t: t.split("\n")[1])
def test_the_synapse_procedures_hold_nothing_dedicated_pools_reject(text: str) -> None:
    assert violations(text) == []
    sqlfluff.parse(text, dialect="tsql")  # raises when it cannot parse


@pytest.mark.parametrize("procedure", procedures.render_all(), ids=lambda p: p.name)
def test_a_synapse_procedure_is_the_files_batch_in_one_transaction(
    procedure: procedures.Procedure,
) -> None:
    text = synapse_deploy.procedure_sql(procedure)
    assert f"CREATE PROCEDURE {procedure.qualified_name}\n" in text
    assert procedure.body in text, "the body is the file's batch, unchanged"
    for name in procedure.parameters:
        assert f"@{name} {procedures.PARAMETER_TYPES[name]}" in text
    before, _, after = text.partition(procedure.body)
    assert "BEGIN TRY" in before and before.rstrip().endswith("BEGIN TRANSACTION;")
    assert "COMMIT TRANSACTION;" in after and "ROLLBACK TRANSACTION;" in after
    assert "THROW;" in after
    # MERGE into a REPLICATE table is not supported (MERGE page, distribution table).
    for table in procedures.written_tables(procedure.body):
        assert ddl_synapse.distribution(_table(table)) != "REPLICATE", table


def _table(name: str) -> Table:
    return next(t for t in TABLES if t.name == name)


def test_columns_keep_their_declared_collations() -> None:
    for table in TABLES:
        batch = _create(table.name)
        for column in table.columns:
            if column.collation:
                assert f"{column.name} {column.sql_type} COLLATE {column.collation} " in batch
    # The case-sensitive attribute collation: a case-only name change is a change.
    assert "company_name NVARCHAR(400) COLLATE Latin1_General_100_CS_AS_SC" in _create(
        "dim.companies"
    )
