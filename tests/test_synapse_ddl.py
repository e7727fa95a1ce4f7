"""The Synapse dedicated SQL pool DDL variant (sql/ddl/synapse.sql), generated from schema.py."""

from __future__ import annotations

import re
from pathlib import Path

import sqlfluff

from company_activity.azure import synapse as ddl_synapse
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
            assert f"{column.name} {column.sql_type.replace(',', ', ')} {null}" in batch
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
