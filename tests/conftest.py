"""Shared fixtures: real DuckDB files and local raw-zone folders under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from company_activity.settings import Settings, load_settings
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate

FIXED_TS = datetime(2025, 1, 1, 6, 0, 0)


def _no_vault(name: str) -> Callable[[str], str | None]:
    raise AssertionError("tests must not reach a real Key Vault")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings isolated from the machine's environment and .env, rooted in tmp_path."""

    def build(**env: str) -> Settings:
        base = {
            "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
            "LOCAL_BLOB_DIR": str(tmp_path / "blob"),
        }
        base.update(env)
        return load_settings(environ=base, dotenv_path=None, secret_lookup_factory=_no_vault)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    """A migrated DuckDB warehouse file."""
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    migrate(wh, FIXED_TS)
    yield wh
    wh.close()
