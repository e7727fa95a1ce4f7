"""Where the T-SQL files are: inside the installed package, or the checkout's `sql/` folder.

A wheel carries the repository's top-level `sql/` as `company_activity/sql` (the build's
force-include, pyproject.toml); a source checkout or editable install reads `sql/` itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sql_dir() -> Path:
    """The folder holding `merge_*.sql`, `populate_analytics.sql`, `views/` and `ddl/`."""
    packaged = resources.files("company_activity") / "sql"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "sql"


SQL_DIR = sql_dir()
