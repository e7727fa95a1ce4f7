"""Render the DDL for each engine from the table declarations in schema.py.

DDL does not transpile (dialect contract, rule 23), so it is generated per engine instead,
always guarded so that running it again creates only what is missing.
"""

from __future__ import annotations

from company_activity.schema import SCHEMAS, TABLES, Column, Table, duckdb_type


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


def full_tsql_script() -> str:
    """The whole schema as one T-SQL script (sql/ddl/azure_sql.sql is this, checked in)."""
    parts = [
        "-- Generated from src/company_activity/schema.py by `company-activity ddl`.",
        "-- Do not edit by hand: tests fail when this file and the declarations disagree.",
        "-- Creates only what is missing; never drops anything.",
    ]
    parts.extend(create_schema("azuresql", s) + "\nGO" for s in SCHEMAS)
    parts.extend(create_table("azuresql", t) + "\nGO" for t in TABLES)
    return "\n\n".join(parts) + "\n"
