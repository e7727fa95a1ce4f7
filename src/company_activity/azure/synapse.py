"""The Synapse dedicated SQL pool variant of the DDL, generated from schema.py.

Dedicated pools differ from Azure SQL in ways the transforms never see, so they live here
and not in the sql/ files (dialect contract, "Targets beyond Azure SQL Database"):

- every table is distributed: HASH (company_id) where the table has company_id, so the
  dimension, staging and analytics rows of one company sit on one distribution and join
  without data movement; small lookup tables are REPLICATEd; run-control tables are
  ROUND_ROBIN;
- tables are CLUSTERED COLUMNSTORE, except those holding (N)VARCHAR(MAX) columns, which
  columnstore does not support in dedicated pools: they are HEAP (the staging tables, which
  are written per date and read once by the merges, are a good fit for heaps anyway);
- primary keys are declared `NONCLUSTERED ... NOT ENFORCED`, the only form dedicated pools
  accept: the optimizer uses them, nothing checks them, so the merges' uniqueness tests matter;
- views: dedicated pools have CREATE VIEW but no CREATE OR ALTER, so a view is created through
  EXEC when it is missing (to change one, drop it first; this script never drops);
- columns keep the collations declared in schema.py (binary UTF-8 ids, case-sensitive
  attributes), which dedicated pools accept per column;
- every batch runs on its own, outside any user transaction: dedicated pools refuse DDL inside
  one (azure/synapse_deploy.py runs it that way).
"""

from __future__ import annotations

from company_activity.warehouse.ddl import create_schema, view_query
from company_activity.warehouse.relations import Column, Table, View
from company_activity.warehouse.schema import CALENDAR, SCHEMAS, TABLES, VIEWS

# Small tables every distribution reads: a full copy on each compute node.
REPLICATED: frozenset[str] = frozenset({CALENDAR.name})


def distribution(table: Table) -> str:
    """The table's DISTRIBUTION option."""
    if "company_id" in table.column_names:
        return "HASH (company_id)"
    if table.name in REPLICATED:
        return "REPLICATE"
    return "ROUND_ROBIN"


def has_lob(table: Table) -> bool:
    return any(c.sql_type.endswith("(MAX)") for c in table.columns)


def index_option(table: Table) -> str:
    """CLUSTERED COLUMNSTORE INDEX, or HEAP where columnstore cannot hold a column."""
    return "HEAP" if has_lob(table) else "CLUSTERED COLUMNSTORE INDEX"


def _column(column: Column) -> str:
    sql_type = column.sql_type.replace(",", ", ")
    # Dedicated pools take a collation per column, UTF-8 ones included ("Database collation
    # support for Synapse SQL"), so ids compare binary and attributes case-sensitively, as on
    # Azure SQL: a CRM that only changes a name's case still updates the dimension.
    collate = f" COLLATE {column.collation}" if column.collation else ""
    return f"{column.name} {sql_type}{collate} {'NULL' if column.nullable else 'NOT NULL'}"


def create_table(table: Table) -> str:
    """CREATE TABLE for a dedicated pool, only when the table does not exist."""
    body = ",\n        ".join(_column(c) for c in table.columns)
    return (
        f"IF OBJECT_ID('{table.name}', 'U') IS NULL\n"
        f"    CREATE TABLE {table.name} (\n        {body}\n    )\n"
        f"    WITH (DISTRIBUTION = {distribution(table)}, {index_option(table)});"
    )


def primary_key_name(table: Table) -> str:
    return f"pk_{table.schema}_{table.short_name}"


def add_primary_key(table: Table) -> str:
    """The table's primary key, NONCLUSTERED and NOT ENFORCED, unless it is there already."""
    name = primary_key_name(table)
    columns = ", ".join(table.primary_key)
    # Run through EXEC like CREATE SCHEMA: sqlfluff's tsql grammar has no NOT ENFORCED, and
    # this keeps the whole file inside what the syntax gate can parse.
    return (
        f"IF OBJECT_ID('{table.schema}.{name}', 'PK') IS NULL\n"
        f"    EXEC ('ALTER TABLE {table.name}\n"
        f"        ADD CONSTRAINT {name}\n"
        f"        PRIMARY KEY NONCLUSTERED ({columns}) NOT ENFORCED');"
    )


def create_view(view: View) -> str:
    """CREATE VIEW for a dedicated pool, only when the view does not exist."""
    # CREATE VIEW must start its batch, so the guarded form runs it through EXEC: the
    # SELECT becomes a string literal, its quotes doubled.
    query = view_query(view).replace("'", "''")
    return (
        f"IF OBJECT_ID('{view.name}', 'V') IS NULL\n"
        f"    EXEC ('CREATE VIEW {view.name} AS\n{query}');"
    )


def full_script() -> str:
    """The whole schema for a dedicated pool (sql/ddl/synapse.sql is this, checked in)."""
    parts = [
        "-- Synapse dedicated SQL pool variant of the schema, generated from",
        "-- src/company_activity/warehouse/schema.py by company_activity.azure.synapse.",
        "-- Do not edit by hand: tests fail when this file and the declarations disagree.",
        "-- Creates only what is missing; never drops anything.",
    ]
    body = [create_schema("synapse", s) + "\nGO" for s in SCHEMAS]
    for table in TABLES:
        body.append(create_table(table) + "\nGO")
        if table.primary_key:
            body.append(add_primary_key(table) + "\nGO")
    body.extend(create_view(view) + "\nGO" for view in VIEWS)
    return "\n".join(parts) + "\n\n" + "\n\n".join(body) + "\n"
