"""The SQL gate: sqlfluff (tsql) over sql/, and the dialect-contract linter over transforms."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlfluff

from company_activity.warehouse.sqllint import lint_file, transform_files

ROOT = Path(__file__).resolve().parents[1]
SQL_FILES = sorted((ROOT / "sql").rglob("*.sql"))
TRANSFORMS = transform_files(ROOT / "sql")


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sqlfluff_tsql_is_clean(path: Path) -> None:
    violations = sqlfluff.lint(path.read_text(), config_path=str(ROOT / ".sqlfluff"))
    assert violations == [], "\n".join(
        f"{path.name}:{v['start_line_no']}: {v['code']} {v['description']}" for v in violations
    )


@pytest.mark.parametrize("path", TRANSFORMS, ids=lambda p: p.name)
def test_transforms_keep_the_dialect_contract(path: Path) -> None:
    violations = lint_file(path)
    assert violations == [], "\n".join(v.format(path.name) for v in violations)


def test_there_are_sql_files_to_check() -> None:
    assert SQL_FILES, "sql/ holds no .sql files"
