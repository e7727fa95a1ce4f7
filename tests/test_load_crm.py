"""CRM staging: a snapshot CSV into stg.crm_companies and stg.quarantine, audited.

Real DuckDB files and a real local raw-zone folder under tmp_path. The fixture
crm_messy.csv has a BOM, CRLF endings, a header in mixed case and order with stray spaces and
an extra column, a quoted comma, a quoted CRLF newline, escaped quotes, non-Latin names,
SQL-looking text, blank and duplicate ids, an unparseable date, short and long records,
too-long values (counted in UTF-16 units, as SQL Server does), a blank line and a stray quote.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity import cli
from company_activity.errors import DataError
from company_activity.staging import csvfile, load_crm, snapshot_date_from_name
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

FIXTURES = Path(__file__).parent / "fixtures" / "staging"
SAMPLE = Path(__file__).parents[1] / "samples" / "crm_sample.csv"
DAY = date(2025, 11, 23)
LOADED_AT = datetime(2025, 11, 24, 2, 0)
CRM_PATH = "raw/crm/"

# Where each record of crm_messy.csv (by its first line) must end up.
EXPECTED_CRM: dict[int, str] = {
    2: "staged",
    3: "staged",
    4: "staged",
    5: "staged",
    6: "staged",  # spans lines 6-7: a quoted CRLF inside the name
    8: "company_id is blank",
    9: "company_id is blank",
    10: "staged",  # duplicate of line 2 once canonical: both stay
    11: "staged",  # last_contact_at unreadable: staged with it NULL and the issue recorded
    12: "staged",  # a short record: the missing trailing fields are blank
    13: "record has 7 fields, the header has 6",
    14: "company_name is longer than 400 characters",
    # 15 is blank: not a record
    16: "staged",
    17: "malformed CSV: unexpected end of data",
    18: "staged",  # the stray quote on 17 does not swallow the rest of the file
    19: "staged",  # 200 emoji = 400 UTF-16 units: fits NVARCHAR(400)
    20: "company_name is longer than 400 characters",  # 201 emoji = 402 units
}


def fixed_clock() -> datetime:
    return LOADED_AT


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


def load(
    wh: DuckDBWarehouse,
    store: LocalFolderStore,
    file: Path | None = FIXTURES / "crm_messy.csv",
    run_id: str = "run-1",
    day: date = DAY,
) -> Any:
    return load_crm(
        wh, store, day, crm_blob_path=CRM_PATH, run_id=run_id, file=file, clock=fixed_clock
    )


def outcome(wh: DuckDBWarehouse) -> dict[int, str]:
    found = {r[0]: "staged" for r in wh.query("SELECT src_line_number FROM stg.crm_companies")}
    for line, reason in wh.query(
        "SELECT src_line_number, reason FROM stg.quarantine WHERE source = 'crm'"
    ):
        assert line not in found
        found[line] = reason
    return found


def snapshot(wh: DuckDBWarehouse) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    staged = wh.query(
        "SELECT snapshot_date, company_id, company_id_raw, company_name, country, industry_tag, "
        "last_contact_at, src_file_name, src_line_number, raw_line FROM stg.crm_companies "
        "ORDER BY src_line_number"
    )
    rejected = wh.query(
        "SELECT source, file_date, src_file_name, src_line_number, company_id, reason, raw_line "
        "FROM stg.quarantine ORDER BY src_line_number"
    )
    return staged, rejected


def test_every_record_lands_where_expected(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    result = load(warehouse, store)
    assert outcome(warehouse) == EXPECTED_CRM
    staged = sum(1 for v in EXPECTED_CRM.values() if v == "staged")
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (
        len(EXPECTED_CRM),
        staged,
        len(EXPECTED_CRM) - staged,
    )
    data = (FIXTURES / "crm_messy.csv").read_bytes()
    assert (result.files_read, result.bytes_read) == (1, len(data))
    assert result.checksum == hashlib.sha256(data).hexdigest()


def test_small_batches_give_the_same_rows(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(warehouse, store)
    before = snapshot(warehouse)
    monkeypatch.setattr(csvfile, "BATCH_RECORDS", 2)
    monkeypatch.setattr(csvfile, "_CHUNK_BYTES", 7)
    load(warehouse, store, run_id="run-2")
    assert snapshot(warehouse) == before


def test_values_are_stored_verbatim_and_timestamps_in_utc(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    load(warehouse, store)
    rows = {
        r["src_line_number"]: r for r in warehouse.query_dicts("SELECT * FROM stg.crm_companies")
    }
    assert rows[2]["company_name"] == "Acme, Inc."
    assert rows[2]["last_contact_at"] == datetime(2025, 11, 1, 10, 0)
    assert (rows[3]["company_name"], rows[3]["country"]) == ("Zürich Räder AG", "CH")
    assert rows[3]["last_contact_at"] == datetime(2025, 11, 1, 9, 0)
    assert rows[4]["company_name"] == "株式会社テスト"
    assert rows[4]["last_contact_at"] == datetime(2025, 11, 2, 0, 0)
    assert rows[5]["company_name"] == "Robert'); DROP TABLE stg.crm_companies;--"
    assert rows[5]["last_contact_at"] is None
    assert rows[6]["company_name"] == "Line one\r\nline two"
    assert rows[6]["last_contact_at"] == datetime(2025, 11, 3, 13, 0)
    assert rows[16]["company_name"] == 'Stark "Industries"'
    # Duplicates stay, each with its line: the dimension MERGE keeps the last.
    assert (rows[10]["company_id"], rows[10]["company_id_raw"]) == ("acme", "ACME ")
    assert rows[2]["company_id"] == "acme"
    # The header's extra column is ignored but kept in the raw line; BOM and CRLF are not data.
    assert rows[2]["raw_line"] == 'acme,2025-11-01T10:00:00Z,"Acme, Inc.",US,saas,first'
    assert rows[6]["raw_line"] == (
        'multi,2025-11-03T08:00:00-05:00,"Line one\r\nline two",US,x,quoted newline'
    )
    for row in rows.values():
        assert row["snapshot_date"] == DAY
        assert row["src_file_name"] == str(FIXTURES / "crm_messy.csv")
        assert (row["run_id"], row["loaded_at"]) == ("run-1", LOADED_AT)


def test_quarantine_keeps_line_raw_text_and_readable_id(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    load(warehouse, store)
    rows = {
        r["src_line_number"]: r
        for r in warehouse.query_dicts("SELECT * FROM stg.quarantine WHERE source = 'crm'")
    }
    assert rows[13]["company_id"] == "long"
    assert rows[13]["raw_line"] == "long,2025-11-01,Long Row,US,x,notes,EXTRA"
    assert rows[17]["raw_line"] == 'stray,2025-11-01,"unterminated,US,x,stray quote'
    assert rows[8]["company_id"] is None
    assert rows[17]["company_id"] is None
    for row in rows.values():
        assert (row["file_date"], row["run_id"]) == (DAY, "run-1")


def test_reload_changes_nothing(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    load(warehouse, store, run_id="run-1")
    before = snapshot(warehouse)
    load(warehouse, store, run_id="run-2")
    assert snapshot(warehouse) == before
    audits = warehouse.query_dicts("SELECT * FROM ops.load_audits ORDER BY run_id")
    assert [(a["run_id"], a["source"], a["status"]) for a in audits] == [
        ("run-1", "crm", "succeeded"),
        ("run-2", "crm", "succeeded"),
    ]
    for audit in audits:
        assert audit["lines_read"] == audit["lines_staged"] + audit["lines_rejected"] == 17


def test_missing_required_column_fails_naming_it_and_keeps_old_rows(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    load(warehouse, store)
    before = snapshot(warehouse)
    with pytest.raises(DataError, match="has no country column"):
        load(warehouse, store, FIXTURES / "crm_missing_column.csv", run_id="run-2")
    assert snapshot(warehouse) == before
    failed = warehouse.query_dicts("SELECT * FROM ops.load_audits WHERE run_id = 'run-2'")
    assert failed[0]["status"] == "failed"
    assert "country" in failed[0]["error_text"]


def test_empty_file_is_an_error_and_a_header_only_file_loads_nothing(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    with pytest.raises(DataError, match="is empty: it has no header row"):
        load(warehouse, store, FIXTURES / "crm_empty.csv")
    result = load(warehouse, store, FIXTURES / "crm_header_only.csv", run_id="run-2")
    assert (result.status, result.lines_read, result.lines_staged) == ("succeeded", 0, 0)


def test_sample_in_the_seed_format_loads(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    header = SAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert header == "company_id,name,country,industry_tag,last_contact_at,file_date,src_file_name"
    result = load(warehouse, store, SAMPLE)
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (10, 10, 0)
    names = dict(warehouse.query("SELECT company_id, company_name FROM stg.crm_companies"))
    assert names["c000003"] == "Zürich Räder AG"
    assert names["c000004"] == "株式会社テスト"
    assert names["c000007"] == 'Stark "Industries"'


def test_raw_zone_file_for_the_date(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    store.write("raw", f"crm/crm_companies_{DAY}.csv", [SAMPLE.read_bytes()])
    result = load(warehouse, store, file=None)
    assert result.lines_staged == 10
    assert warehouse.scalar("SELECT MIN(src_file_name) FROM stg.crm_companies") == (
        f"raw/crm/crm_companies_{DAY}.csv"
    )
    with pytest.raises(DataError, match="no CRM snapshot for 2025-11-24"):
        load(warehouse, store, file=None, day=date(2025, 11, 24))


def test_another_date_is_untouched(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    load(warehouse, store, day=date(2025, 11, 22))
    load(warehouse, store, SAMPLE)
    load(warehouse, store, SAMPLE)
    counts = warehouse.query(
        "SELECT snapshot_date, COUNT(*) FROM stg.crm_companies GROUP BY snapshot_date "
        "ORDER BY snapshot_date"
    )
    assert counts == [(date(2025, 11, 22), 11), (DAY, 10)]


def test_snapshot_date_from_file_name() -> None:
    assert snapshot_date_from_name("x/crm_companies_2025-11-23.csv") == DAY
    assert snapshot_date_from_name("crm.csv") is None
    assert snapshot_date_from_name("crm_2025-13-45.csv") is None


def test_load_crm_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SQL_CONN_STR", "BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cli.duckdb"))
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "cli-blob"))
    assert cli.main(["--env-file", os.devnull, "init-db"]) == 0
    dated = tmp_path / f"crm_companies_{DAY}.csv"
    shutil.copy(FIXTURES / "crm_messy.csv", dated)
    assert cli.main(["--env-file", os.devnull, "load-crm", "--file", str(dated)]) == 0
    out = capsys.readouterr().out
    assert "2025-11-23 crm: 1 file, 17 lines read, 11 staged, 6 rejected" in out
    assert "see stg.quarantine where source = 'crm' and file_date = '2025-11-23'" in out
    code = cli.main(
        ["--env-file", os.devnull, "load-crm", "--file", str(FIXTURES / "crm_missing_column.csv")]
    )
    assert code == cli.EXIT_TERMINAL
    assert "--date" in capsys.readouterr().err
    code = cli.main(
        [
            "--env-file",
            os.devnull,
            "load-crm",
            "--date",
            str(DAY),
            "--file",
            str(FIXTURES / "crm_missing_column.csv"),
        ]
    )
    assert code == cli.EXIT_TERMINAL
    assert "has no country column" in capsys.readouterr().err


def test_load_crm_command_loads_the_seed_sample_dated_by_its_file_date_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SQL_CONN_STR", "BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cli.duckdb"))
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "cli-blob"))
    assert cli.main(["--env-file", os.devnull, "init-db"]) == 0
    assert cli.main(["--env-file", os.devnull, "load-crm", "--file", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "2025-11-23 crm: 1 file, 10 lines read, 10 staged, 0 rejected" in out
    # A file with no date in its name and none (or several) in a file_date column needs --date.
    undated = tmp_path / "crm.csv"
    undated.write_text(
        SAMPLE.read_text(encoding="utf-8").replace("2025-11-23,crm", "2025-11-22,crm", 1),
        encoding="utf-8",
    )
    assert cli.main(["--env-file", os.devnull, "load-crm", "--file", str(undated)]) == (
        cli.EXIT_TERMINAL
    )
    assert "--date" in capsys.readouterr().err


def test_load_crm_command_reads_the_crm_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SQL_CONN_STR", "BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cli.duckdb"))
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "cli-blob"))
    monkeypatch.setenv("CRM_DATE_FORMATS", "%m/%d/%Y")
    monkeypatch.setenv("CRM_ENCODING", "cp1252")
    assert cli.main(["--env-file", os.devnull, "init-db"]) == 0
    export = tmp_path / f"crm_companies_{DAY}.csv"
    export.write_bytes(
        "Company_ID;Name;Country;Industry_Tag;Last_Contact_At\r\nc1;Café;FR;food;11/20/2025\r\n".encode(
            "cp1252"
        )
    )
    assert cli.main(["--env-file", os.devnull, "load-crm", "--file", str(export)]) == 0
    assert "1 line read, 1 staged, 0 rejected" in capsys.readouterr().out
    wh = DuckDBWarehouse(tmp_path / "cli.duckdb")
    try:
        assert wh.query("SELECT company_name, last_contact_at FROM stg.crm_companies") == [
            ("Café", datetime(2025, 11, 20))
        ]
    finally:
        wh.close()
    monkeypatch.setenv("CRM_COLUMN_MAP", "Record ID=id")
    code = cli.main(["--env-file", os.devnull, "load-crm", "--file", str(export)])
    assert code != 0
    assert "CRM_COLUMN_MAP: 'Record ID=id' must be" in capsys.readouterr().err
