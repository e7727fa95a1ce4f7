"""The command line: one-line errors, exit codes, tracebacks only with --verbose, documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from company_activity.cli import build_parser, main
from company_activity.warehouse.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("API_", "BLOB_", "SQL_", "KEY_VAULT"))
    }
    env.update(
        {"DUCKDB_PATH": str(tmp_path / "w.duckdb"), "LOCAL_BLOB_DIR": str(tmp_path / "blob")}
    )
    env.update(extra)
    return env


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "company_activity", "--env-file", os.devnull, *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        cwd=ROOT,
        timeout=120,
    )


def test_init_db_then_status(tmp_path: Path) -> None:
    first = _cli(tmp_path, "init-db")
    assert first.returncode == 0, first.stderr
    assert f"applied {[m.version for m in MIGRATIONS]}" in first.stdout
    second = _cli(tmp_path, "init-db")
    assert "nothing to do" in second.stdout
    status = _cli(tmp_path, "status")
    assert "analytics.company_activity_daily" in status.stdout
    assert (tmp_path / "w.duckdb").is_file()


def test_bad_setting_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = _cli(tmp_path, "init-db", API_PAGE_SIZE="lots")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: API_PAGE_SIZE must be a whole number, got 'lots'."
    )
    assert "Traceback" not in result.stderr


def test_verbose_shows_traceback_but_no_secret(tmp_path: Path) -> None:
    result = _cli(
        tmp_path,
        "--verbose",
        "init-db",
        SQL_CONN_STR="Driver={Missing Driver};Server=x;Pwd=topsecretpw1;",
        SQL_USE_ACCESS_TOKEN="nah",
    )
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "topsecretpw1" not in result.stderr + result.stdout


def test_pyodbc_failure_is_a_clear_error_without_the_secret(tmp_path: Path) -> None:
    result = _cli(
        tmp_path, "init-db", SQL_CONN_STR="Driver={No Such Driver};Server=x;Pwd=topsecretpw2;"
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "topsecretpw2" not in result.stderr + result.stdout
    assert result.stderr.strip().startswith("error:")


def test_main_returns_exit_code_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "m.duckdb"))
    assert main(["--env-file", os.devnull, "init-db"]) == 0


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    commands = set(subparsers.choices)  # type: ignore[arg-type]
    missing = {c for c in commands if not re.search(rf"company-activity {re.escape(c)}\b", readme)}
    assert not missing, f"README does not document: {sorted(missing)}"
