"""One warehouse interface, two engines: DuckDB (embedded default) and Azure SQL."""

from __future__ import annotations

from company_activity.settings import Settings
from company_activity.warehouse.base import Warehouse


def open_warehouse(settings: Settings, read_only: bool = False) -> Warehouse:
    """Azure SQL when SQL_CONN_STR is set, else the DuckDB file at DUCKDB_PATH.

    read_only: a DuckDB file is opened in DuckDB's read-only mode (it must exist; nothing is
    created). Azure SQL has no such connection mode; the commands that ask for it only read.
    """
    if settings.sql_conn_str:
        from company_activity.warehouse.azuresql import AzureSqlWarehouse

        return AzureSqlWarehouse(settings.sql_conn_str, settings.sql_use_access_token)
    from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(settings.duckdb_path, settings.duckdb_memory_limit, read_only)


__all__ = ["Warehouse", "open_warehouse"]
