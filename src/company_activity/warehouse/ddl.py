"""Render the DDL for each engine from the table and view declarations in schema.py.

DDL does not transpile (dialect contract, rule 23), so it is generated per engine instead,
always guarded so that running it again creates only what is missing. A view's SELECT does
transpile: it is T-SQL in sql/views/, run as written on Azure SQL and through the warehouse's
strict sqlglot path on DuckDB.
"""

from __future__ import annotations

import re
from pathlib import Path

from company_activity.errors import SqlContractError
from company_activity.warehouse.relations import Column, Table, View, duckdb_type
from company_activity.warehouse.schema import SCHEMAS, TABLES, VIEWS
from company_activity.warehouse.sql_files import SQL_DIR
from company_activity.warehouse.tsql import split_batches, to_qmark, transpile_batch

# sql/ at the repository root (the package is installed editable from the checkout).

_HEADER_COMMENT = re.compile(r"\A(?:[ \t]*(?:--[^\n]*)?\n)+")


def _column_tsql(column: Column) -> str:
    sql_type = column.sql_type.replace(",", ", ")
    collate = f" COLLATE {column.collation}" if column.collation else ""
    return f"{column.name} {sql_type}{collate} {'NULL' if column.nullable else 'NOT NULL'}"


def _column_duckdb(column: Column) -> str:
    return f"{column.name} {duckdb_type(column.sql_type)}{'' if column.nullable else ' NOT NULL'}"


def create_schema(engine: str, schema: str) -> str:
    if engine == "duckdb":
        return f"CREATE SCHEMA IF NOT EXISTS {schema};"
    return f"IF SCHEMA_ID('{schema}') IS NULL EXEC ('CREATE SCHEMA {schema}');"


def create_table(engine: str, table: Table) -> str:
    """CREATE TABLE for one engine, creating it only when it does not exist."""
    if engine == "duckdb":
        lines = [_column_duckdb(c) for c in table.columns]
        if table.primary_key and table.duckdb_enforces_key:
            lines.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
        body = ",\n    ".join(lines)
        return f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {body}\n);"
    lines = [_column_tsql(c) for c in table.columns]
    if table.primary_key:
        lines.append(
            f"CONSTRAINT pk_{table.schema}_{table.short_name} "
            f"PRIMARY KEY ({', '.join(table.primary_key)})"
        )
    body = ",\n        ".join(lines)
    statements = [
        f"IF OBJECT_ID('{table.name}', 'U') IS NULL\n"
        f"    CREATE TABLE {table.name} (\n        {body}\n    );"
    ]
    for columns in table.indexes:
        name = f"ix_{table.short_name}_{'_'.join(columns)}"
        statements.append(
            "IF\n"
            "    NOT EXISTS (\n"
            "        SELECT 1 FROM sys.indexes\n"
            "        WHERE\n"
            f"            name = '{name}'\n"
            f"            AND object_id = OBJECT_ID('{table.name}')\n"
            "    )\n"
            f"    CREATE NONCLUSTERED INDEX {name}\n"
            f"        ON {table.name} ({', '.join(columns)});"
        )
    return "\n\n".join(statements)


def add_column(engine: str, table: Table, column: Column) -> str:
    """ALTER TABLE ... ADD for one engine, adding the column only when it is missing."""
    if engine == "duckdb":
        return f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {_column_duckdb(column)};"
    return (
        f"IF COL_LENGTH('{table.name}', '{column.name}') IS NULL\n"
        f"    ALTER TABLE {table.name} ADD {_column_tsql(column)};"
    )


def drop_table(name: str) -> str:
    """DROP TABLE, the same on every engine (only for a migration that moved the rows first)."""
    return f"DROP TABLE {name};"


def view_query(view: View, sql_dir: Path = SQL_DIR) -> str:
    """The view's T-SQL SELECT from its file, without the header comment or a final ';'.

    Raises SqlContractError unless the file holds one batch without parameters: a view
    cannot take them.
    """
    text = (sql_dir / view.query_file).read_text(encoding="utf-8")
    batches = split_batches(_HEADER_COMMENT.sub("", text))
    if len(batches) != 1:
        raise SqlContractError(
            f"sql/{view.query_file} holds {len(batches)} batches; a view file is one SELECT"
        )
    query = batches[0].rstrip().rstrip(";").rstrip()
    if to_qmark(query)[1]:
        raise SqlContractError(
            f"sql/{view.query_file} uses @parameters; a view cannot take them: filter when "
            "reading the view instead"
        )
    return query


def create_view(engine: str, view: View, sql_dir: Path = SQL_DIR) -> str:
    """Create the view, or replace its definition when it exists (it holds no rows)."""
    query = view_query(view, sql_dir)
    if engine == "duckdb":
        statements = transpile_batch(query)
        if len(statements) != 1:
            raise SqlContractError(f"sql/{view.query_file} must hold exactly one SELECT")
        return f"CREATE OR REPLACE VIEW {view.name} AS\n{statements[0].sql};"
    # CREATE VIEW must start its batch; CREATE OR ALTER keeps permissions granted on it.
    return f"CREATE OR ALTER VIEW {view.name} AS\n{query};"


def full_tsql_script() -> str:
    """The whole schema as one T-SQL script (sql/ddl/azure_sql.sql is this, checked in)."""
    parts = [
        "-- Generated from src/company_activity/warehouse/schema.py by `company-activity ddl`.",
        "-- Do not edit by hand: tests fail when this file and the declarations disagree.",
        "-- Creates only what is missing and (re)defines the views; never drops anything.\n"
        "-- A database whose analytics.company_activity_daily is still a table (schema\n"
        "-- version 1) upgrades with `company-activity init-db`, which moves its rows first.",
    ]
    parts.extend(create_schema("azuresql", s) + "\nGO" for s in SCHEMAS)
    parts.extend(create_table("azuresql", t) + "\nGO" for t in TABLES)
    parts.extend(create_view("azuresql", v) + "\nGO" for v in VIEWS)
    return "\n\n".join(parts) + "\n"
