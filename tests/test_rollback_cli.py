"""`company-activity rollback` on a date nothing names (real DuckDB file, the CLI's main()).

A mistyped date (2025-03-30 for 2025-03-03) used to be "rolled back" with exit 0: a rollback
recorded, the summary saying the date is pending again, and the intended date untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from company_activity.cli import main
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

DAY = "2025-03-03"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME", "API_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "blob"))
    monkeypatch.chdir(tmp_path)  # no .env here
    assert main(["init-db"]) == 0
    assert main(["run", "--mock", "--companies", "3", "--date", DAY]) == 0
    return tmp_path


def rollbacks(home: Path) -> list[tuple[object, ...]]:
    wh = DuckDBWarehouse(home / "w.duckdb", read_only=True)
    try:
        return wh.query("SELECT activity_date, analytics_rows_deleted FROM ops.rollbacks")
    finally:
        wh.close()


@pytest.mark.parametrize("staging", [[], ["--staging"]])
def test_rollback_of_a_date_nothing_names_is_refused(
    home: Path, staging: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["rollback", "--date", "2025-03-30", *staging]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        "error: nothing to roll back on 2025-03-30: no analytics or staging rows, loads or runs "
        "name that date; check the date"
    )
    assert rollbacks(home) == []


def test_rollback_of_a_loaded_date_still_works_and_reruns(home: Path) -> None:
    assert main(["rollback", "--date", DAY, "--staging"]) == 0
    assert main(["rollback", "--date", DAY, "--staging"]) == 0  # idempotent: its loads remain
    assert sorted(int(str(row[1])) for row in rollbacks(home)) == [0, 3]


def test_plain_rollback_of_a_stray_date_says_it_still_counts(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stray = "2099-12-31"
    assert main(["run", "--mock", "--companies", "3", "--date", stray, "--allow-future"]) == 0
    capsys.readouterr()
    assert main(["rollback", "--date", stray]) == 0
    out = capsys.readouterr().out
    # the re-run it names is one the CLI accepts, and the way to undo the date whole is given
    assert f"`company-activity run --date {stray} --allow-future` rebuilds it" in out
    assert "its loads still count" in out
    assert f"`company-activity rollback --date {stray} --staging`" in out
    assert main(["rollback", "--date", stray, "--staging"]) == 0
    assert "its loads still count" not in capsys.readouterr().out


def test_a_report_folder_that_cannot_be_written_is_one_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = home / "taken"
    taken.write_text("a file, not a folder\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["report", "--start", DAY, "--end", DAY, "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot write the report in {taken}: ")
    assert err.endswith("pass --out a folder you can write")
    assert "Errno" not in err and len(err.splitlines()) == 1
