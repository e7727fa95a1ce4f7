"""One warehouse interface, two engines: DuckDB (embedded default) and Azure SQL."""

from __future__ import annotations

from company_activity.settings import Settings
from company_activity.warehouse.base import Warehouse


def open_warehouse(settings: Settings) -> Warehouse:
    """Azure SQL when SQL_CONN_STR is set, else the DuckDB file at DUCKDB_PATH."""
    if settings.sql_conn_str:
        from company_activity.warehouse.azuresql import AzureSqlWarehouse

        return AzureSqlWarehouse(settings.sql_conn_str, settings.sql_use_access_token)
    from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

    return DuckDBWarehouse(settings.duckdb_path, settings.duckdb_memory_limit)


__all__ = ["Warehouse", "open_warehouse"]
