"""Usage staging: a raw-zone partition into stg.product_usage and stg.quarantine, audited.

Real DuckDB files and real local raw-zone folders under tmp_path; partitions are written the
way the fetch writes them (part files, then the manifest last).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity import cli
from company_activity.errors import DataError
from company_activity.ingest.rawzone import Manifest, PartInfo, manifest_path, part_path
from company_activity.staging import lines as lines_module
from company_activity.staging import load_usage, replace
from company_activity.staging.folder import dated_files
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

FIXTURES = Path(__file__).parent / "fixtures" / "staging"
CONTAINER = "product-api-raw"
DAY = date(2025, 11, 23)
LOADED_AT = datetime(2025, 11, 24, 2, 0)
PART = f"{CONTAINER}/date={DAY}/part-00001.ndjson"

# Where each line of usage_mixed.ndjson must end up: 'staged', or the reason it was rejected.
EXPECTED_USAGE: dict[int, str] = {
    1: "staged",
    2: "staged",
    3: "staged",
    4: "staged",
    5: "staged",
    6: "staged",
    7: "staged",
    8: "not valid JSON",
    9: "not a JSON object",
    10: "company_id is missing",
    11: "company_id is empty",
    12: "company_id is longer than 100 bytes in UTF-8",
    13: "company_id must be a string, got 42",
    14: "active_users must not be negative, got -3",
    15: "events must not be negative, got -9",
    16: "active_users must be an integer, got 1.5",
    17: "active_users must be an integer, got true",
    18: "active_users must be an integer, got 12.7",
    19: "events is missing",
    20: "active_users is out of range (at most 2147483647), got 3000000000",
    21: "date 2025-11-22 does not match the partition date 2025-11-23",
    22: "date must be a YYYY-MM-DD string, got 23/11/2025",
    23: "ts is not an ISO-8601 timestamp: yesterday",
    24: "empty line",
    25: "not valid JSON (Expecting property name enclosed in double quotes)",
    26: "not a JSON object",
    27: "staged",
}


def fixed_clock() -> datetime:
    return LOADED_AT


def write_partition(
    store: LocalFolderStore,
    day: date,
    parts: Sequence[bytes],
    *,
    gzipped: Sequence[bool] = (),
    records: Sequence[int] | None = None,
) -> Manifest:
    """Write parts, then the manifest last, as the fetch does."""
    infos = []
    for number, body in enumerate(parts, start=1):
        zipped = gzipped[number - 1] if gzipped else False
        stored = gzip.compress(body, mtime=0) if zipped else body
        path = part_path(day, number, zipped)
        store.write(CONTAINER, path, [stored])
        count = records[number - 1] if records else len(body.splitlines())
        infos.append(PartInfo(path, count, hashlib.sha256(stored).hexdigest(), len(stored)))
    manifest = Manifest(day, "fetch-run", "2025-11-24T01:00:00Z", 1, tuple(infos))
    store.write(CONTAINER, manifest_path(day), [manifest.to_json()])
    return manifest


def mixed() -> bytes:
    return (FIXTURES / "usage_mixed.ndjson").read_bytes()


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


def load(wh: DuckDBWarehouse, store: LocalFolderStore, run_id: str = "run-1") -> Any:
    return load_usage(wh, store, DAY, container=CONTAINER, run_id=run_id, clock=fixed_clock)


def outcome(wh: DuckDBWarehouse, day: date = DAY) -> dict[int, str]:
    """line -> 'staged' or the quarantine reason, for one file of the day."""
    found = {
        r[0]: "staged"
        for r in wh.query(
            "SELECT src_line_number FROM stg.product_usage WHERE file_date = CAST(@d AS DATE)",
            {"d": day},
        )
    }
    for line, reason in wh.query(
        "SELECT src_line_number, reason FROM stg.quarantine "
        "WHERE source = 'usage' AND file_date = CAST(@d AS DATE)",
        {"d": day},
    ):
        assert line not in found, f"line {line} is both staged and quarantined"
        found[line] = reason
    return found


def snapshot(wh: DuckDBWarehouse) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Staging and quarantine without the columns a rerun may change (run id, load time)."""
    staged = wh.query(
        "SELECT file_date, company_id, company_id_raw, active_users, events, event_ts, "
        "src_file_name, src_line_number, raw_json FROM stg.product_usage "
        "ORDER BY src_file_name, src_line_number"
    )
    rejected = wh.query(
        "SELECT source, file_date, src_file_name, src_line_number, company_id, reason, raw_line "
        "FROM stg.quarantine ORDER BY source, src_file_name, src_line_number"
    )
    return staged, rejected


def test_every_line_lands_where_expected(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    write_partition(store, DAY, [mixed()])
    result = load(warehouse, store)
    assert outcome(warehouse) == EXPECTED_USAGE
    staged = sum(1 for v in EXPECTED_USAGE.values() if v == "staged")
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (
        len(EXPECTED_USAGE),
        staged,
        len(EXPECTED_USAGE) - staged,
    )
    assert result.status == "succeeded"


def test_staged_values_and_provenance(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    write_partition(store, DAY, [mixed()])
    load(warehouse, store)
    rows = {
        r["src_line_number"]: r for r in warehouse.query_dicts("SELECT * FROM stg.product_usage")
    }
    raw_lines = mixed().decode("utf-8").split("\n")
    assert rows[1]["company_id"] == "c000001"
    assert rows[1]["event_ts"] == datetime(2025, 11, 23, 9, 15)
    # Canonical id trimmed and lower-cased, the raw one kept; ints from strings; offset to UTC.
    assert rows[2]["company_id"] == "c000002"
    assert rows[2]["company_id_raw"] == " C000002 "
    assert (rows[2]["active_users"], rows[2]["events"]) == (4, 51)
    assert rows[2]["event_ts"] == datetime(2025, 11, 23, 10, 0)
    assert rows[3]["event_ts"] is None
    assert rows[5]["company_id"] == "株式会社テスト"
    assert rows[5]["event_ts"] == datetime(2025, 11, 23, 0, 0)
    assert rows[6]["company_id"] == "x'); drop table stg.product_usage;--"
    assert rows[7]["event_ts"] is None
    assert rows[27]["event_ts"] == datetime(2025, 11, 24, 4, 30)
    # CRLF: the CR is a line ending, not data.
    assert rows[27]["raw_json"] == raw_lines[26].rstrip("\r")
    for line, row in rows.items():
        assert row["file_date"] == DAY
        assert row["src_file_name"] == PART
        assert row["run_id"] == "run-1"
        assert row["loaded_at"] == LOADED_AT
        if line != 27:
            assert row["raw_json"] == raw_lines[line - 1]


def test_quarantine_rows_carry_provenance_and_readable_ids(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    write_partition(store, DAY, [mixed()])
    load(warehouse, store)
    rows = {
        r["src_line_number"]: r
        for r in warehouse.query_dicts("SELECT * FROM stg.quarantine WHERE source = 'usage'")
    }
    raw_lines = mixed().decode("utf-8").split("\n")
    for line, row in rows.items():
        assert row["raw_line"] == raw_lines[line - 1]
        assert (row["file_date"], row["src_file_name"]) == (DAY, PART)
        assert (row["run_id"], row["loaded_at"]) == ("run-1", LOADED_AT)
    # The model flags (company, date) pairs with rejected records: the id when readable.
    assert rows[14]["company_id"] == "c000007"
    assert rows[21]["company_id"] == "c000014"
    assert rows[25]["company_id"] == "c000017"
    for unreadable in (8, 9, 10, 11, 12, 24, 26):
        assert rows[unreadable]["company_id"] is None


def test_reload_changes_nothing_and_audits_each_run(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    write_partition(store, DAY, [mixed()])
    first = load(warehouse, store, "run-1")
    before = snapshot(warehouse)
    second = load(warehouse, store, "run-2")
    assert snapshot(warehouse) == before
    audits = warehouse.query_dicts(
        "SELECT * FROM ops.load_audits WHERE source = 'usage' ORDER BY run_id"
    )
    assert [a["run_id"] for a in audits] == ["run-1", "run-2"]
    data = mixed()
    for audit, result in zip(audits, (first, second), strict=True):
        assert audit["status"] == "succeeded"
        assert audit["lines_read"] == audit["lines_staged"] + audit["lines_rejected"]
        assert audit["lines_read"] == len(EXPECTED_USAGE)
        assert (audit["files_read"], audit["bytes_read"]) == (1, len(data))
        assert audit["checksum"] == hashlib.sha256(data).hexdigest()
        assert audit["lines_staged"] == result.lines_staged
        assert audit["file_date"] == DAY


def test_other_dates_and_crm_rows_are_untouched(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    other = date(2025, 11, 22)
    write_partition(store, other, [b'{"company_id": "a", "active_users": 1, "events": 1}\n'])
    write_partition(store, DAY, [mixed()])
    load_usage(warehouse, store, other, container=CONTAINER, run_id="r", clock=fixed_clock)
    warehouse.execute(
        "INSERT INTO stg.quarantine (source, file_date, src_file_name, src_line_number, reason, "
        "raw_line, run_id, loaded_at) VALUES ('crm', CAST(@d AS DATE), 'f', 1, 'x', 'x', 'r', @t)",
        {"d": DAY, "t": LOADED_AT},
    )
    load(warehouse, store)
    load(warehouse, store)
    assert outcome(warehouse, other) == {1: "staged"}
    assert warehouse.scalar("SELECT COUNT(*) FROM stg.quarantine WHERE source = 'crm'") == 1


def test_parts_gzip_and_small_chunks_give_the_same_rows(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = mixed()
    split = data.index(b"\n", len(data) // 2) + 1
    first, second = data[:split], data[split:]
    write_partition(store, DAY, [first, second], gzipped=[False, True])
    # Tiny chunks: lines cross chunk boundaries, batches are many.
    monkeypatch.setattr(lines_module, "CHUNK_BYTES", 64)
    result = load(warehouse, store)
    n_first = first.count(b"\n")
    expected_rows = {
        (f"date={DAY}/part-00001.ndjson", line): reason
        for line, reason in EXPECTED_USAGE.items()
        if line <= n_first
    } | {
        (f"date={DAY}/part-00002.ndjson.gz", line - n_first): reason
        for line, reason in EXPECTED_USAGE.items()
        if line > n_first
    }
    found = {
        (name.removeprefix(CONTAINER + "/"), line): "staged"
        for name, line in warehouse.query(
            "SELECT src_file_name, src_line_number FROM stg.product_usage"
        )
    } | {
        (name.removeprefix(CONTAINER + "/"), line): reason
        for name, line, reason in warehouse.query(
            "SELECT src_file_name, src_line_number, reason FROM stg.quarantine"
        )
    }
    assert found == expected_rows
    stored = [
        store.open_read(CONTAINER, p).read() for p in (part_path(DAY, 1), part_path(DAY, 2, True))
    ]
    assert result.files_read == 2
    assert result.bytes_read == sum(len(s) for s in stored)
    assert result.checksum == hashlib.sha256(b"".join(stored)).hexdigest()


@pytest.mark.parametrize("parts", [[b""], []], ids=["empty-part", "no-parts"])
def test_empty_partition_is_a_completed_load_of_nothing(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, parts: list[bytes]
) -> None:
    write_partition(store, DAY, [mixed()])
    load(warehouse, store)
    write_partition(store, DAY, parts) if parts else _manifest_only(store)
    result = load(warehouse, store, "run-2")
    assert (result.status, result.lines_read, result.lines_staged, result.lines_rejected) == (
        "succeeded",
        0,
        0,
        0,
    )
    assert outcome(warehouse) == {}
    assert (
        warehouse.scalar(
            "SELECT COUNT(*) FROM ops.load_audits WHERE run_id = 'run-2' AND status = 'succeeded'"
        )
        == 1
    )


def _manifest_only(store: LocalFolderStore) -> None:
    manifest = Manifest(DAY, "fetch-run", "2025-11-24T01:00:00Z", 1, ())
    store.write(CONTAINER, manifest_path(DAY), [manifest.to_json()])


def test_missing_manifest_says_run_the_fetch_and_is_audited(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    with pytest.raises(DataError, match="run `company-activity fetch --start 2025-11-23"):
        load(warehouse, store)
    audit = warehouse.query_dicts("SELECT * FROM ops.load_audits")
    assert [(a["status"], a["files_read"], a["lines_read"]) for a in audit] == [("failed", 0, 0)]
    assert "no usage partition" in audit[0]["error_text"]


@pytest.mark.parametrize("damage", ["records", "sha256"])
def test_part_that_disagrees_with_its_manifest_fails_and_keeps_the_old_rows(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, damage: str
) -> None:
    write_partition(store, DAY, [mixed()])
    load(warehouse, store)
    before = snapshot(warehouse)
    if damage == "records":
        write_partition(store, DAY, [mixed()], records=[3])
        message = "has 27 lines but its manifest lists 3 records"
    else:
        write_partition(store, DAY, [mixed()])
        store.write(CONTAINER, part_path(DAY, 1), [mixed().replace(b"c000001", b"c999999")])
        message = "does not match the sha256 in its manifest"
    with pytest.raises(DataError, match=message):
        load(warehouse, store, "run-2")
    assert snapshot(warehouse) == before
    statuses = warehouse.query("SELECT run_id, status FROM ops.load_audits ORDER BY run_id")
    assert statuses == [("run-1", "succeeded"), ("run-2", "failed")]


def test_counts_that_do_not_balance_commit_nothing(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_partition(store, DAY, [mixed()])
    load(warehouse, store)
    before = snapshot(warehouse)
    real_counts: Callable[..., tuple[int, int]] = replace._counts

    def one_row_lost(*args: Any) -> tuple[int, int]:
        staged, rejected = real_counts(*args)
        return staged - 1, rejected

    monkeypatch.setattr(replace, "_counts", one_row_lost)
    with pytest.raises(
        DataError, match=r"does not balance: 27 lines read but 7 staged \+ 19 rejected"
    ):
        load(warehouse, store, "run-2")
    assert snapshot(warehouse) == before
    failed = warehouse.query_dicts("SELECT * FROM ops.load_audits WHERE run_id = 'run-2'")
    assert failed[0]["status"] == "failed"
    assert "nothing was committed" in failed[0]["error_text"]


def test_invalid_utf8_line_is_quarantined_alone(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    body = (
        b'{"company_id": "a", "active_users": 1, "events": 1}\n'
        b'{"company_id": "b\xff", "active_users": 1, "events": 1}\n'
        b'{"company_id": "c", "active_users": 1, "events": 1}\n'
    )
    write_partition(store, DAY, [body])
    load(warehouse, store)
    assert outcome(warehouse) == {1: "staged", 2: "not valid UTF-8 (byte 18)", 3: "staged"}


@pytest.mark.parametrize(
    ("company_id", "expected"),
    [
        ('"123"', "staged"),
        ('"true"', "staged"),
        ('"{not json}"', "staged"),
        ('"a, }"', "staged"),  # looks like a trailing comma to the cheap pre-check only
        ("12.5", "company_id must be a string, got 12.5"),
        ("false", "company_id must be a string, got false"),
        ('{"id": 1}', 'company_id must be a string, got {"id":1}'),
        ("[1]", "company_id must be a string, got [1]"),
        ("null", "company_id is missing"),
    ],
)
def test_company_id_must_be_a_json_string(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, company_id: str, expected: str
) -> None:
    line = f'{{"company_id": {company_id}, "active_users": 1, "events": 1}}\n'
    write_partition(store, DAY, [line.encode()])
    load(warehouse, store)
    assert outcome(warehouse) == {1: expected}


def test_a_retried_load_in_the_same_run_replaces_its_audit_row(
    warehouse: DuckDBWarehouse, store: LocalFolderStore
) -> None:
    with pytest.raises(DataError):
        load(warehouse, store, "run-1")
    write_partition(store, DAY, [mixed()])
    load(warehouse, store, "run-1")
    assert warehouse.query("SELECT status FROM ops.load_audits") == [("succeeded",)]


def test_load_usage_command_prints_counts_and_fails_per_date(
    settings_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalFolderStore(settings_env["LOCAL_BLOB_DIR"])
    write_partition(store, DAY, [mixed()])
    assert cli.main(["--env-file", os.devnull, "init-db"]) == 0
    code = cli.main(
        ["--env-file", os.devnull, "load-usage", "--start", "2025-11-22", "--end", "2025-11-23"]
    )
    out, err = capsys.readouterr()
    assert code == cli.EXIT_TERMINAL
    assert "2025-11-23 usage: 1 file, 27 lines read, 8 staged, 19 rejected" in out
    assert "2025-11-22 usage: FAILED: no usage partition" in err
    assert "1 of 2 date(s) failed: 2025-11-22" in err
    assert cli.main(["--env-file", os.devnull, "load-usage", "--start", "2025-11-23"]) == 0


def test_load_usage_needs_migrations_first(settings_env: dict[str, str]) -> None:
    store = LocalFolderStore(settings_env["LOCAL_BLOB_DIR"])
    write_partition(store, DAY, [mixed()])
    assert cli.main(["--env-file", os.devnull, "load-usage", "--start", "2025-11-23"]) == 2


def test_folder_files_are_dated_by_folder_or_name(tmp_path: Path) -> None:
    root = tmp_path / "samples"
    (root / "date=2025-11-23").mkdir(parents=True)
    (root / "date=2025-11-23" / "b.ndjson").write_bytes(b"{}\n")
    (root / "date=2025-11-23" / "a.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    (root / "usage_2025-11-24.ndjson").write_bytes(b"{}\n")
    (root / "notes.txt").write_text("ignored")
    groups = dated_files(root)
    assert {day: [f.name for f in files] for day, files in groups.items()} == {
        date(2025, 11, 23): ["date=2025-11-23/a.jsonl.gz", "date=2025-11-23/b.ndjson"],
        date(2025, 11, 24): ["usage_2025-11-24.ndjson"],
    }
    (root / "undated.ndjson").write_bytes(b"{}\n")
    with pytest.raises(DataError, match="cannot tell the date of 1 file"):
        dated_files(root)


def test_load_samples_script_loads_a_folder_and_reloads_identically(
    settings_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "load_samples_to_sql", Path(__file__).parents[1] / "scripts" / "load_samples_to_sql.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = tmp_path / "ndjson" / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "part-1.ndjson").write_bytes(mixed())
    assert cli.main(["--env-file", os.devnull, "init-db"]) == 0
    argv = script._argv(["--path", str(tmp_path / "ndjson"), "--env-file", os.devnull])
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2025-11-23 usage: 1 file, 27 lines read, 8 staged, 19 rejected" in out
    wh = DuckDBWarehouse(settings_env["DUCKDB_PATH"])
    try:
        before = snapshot(wh)
        assert before[0][0][6] == f"date={DAY}/part-1.ndjson"
    finally:
        wh.close()
    assert cli.main(argv) == 0
    wh = DuckDBWarehouse(settings_env["DUCKDB_PATH"])
    try:
        assert snapshot(wh) == before
    finally:
        wh.close()


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment a CLI run reads, rooted in tmp_path (no .env file)."""
    env = {
        "DUCKDB_PATH": str(tmp_path / "cli.duckdb"),
        "LOCAL_BLOB_DIR": str(tmp_path / "cli-blob"),
    }
    for name in ("SQL_CONN_STR", "BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_path_reads_raw_zone_partitions_through_their_manifests(
    settings_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A stale part beside a manifest partition is never staged (the manifest decides)."""
    raw = LocalFolderStore(tmp_path / "copy")
    write_partition(raw, DAY, [b'{"company_id":"a","active_users":1,"events":2}\n'])
    stale = tmp_path / "copy" / CONTAINER / f"date={DAY}" / "part-09999.ndjson"
    stale.write_bytes(b'{"company_id":"stale","active_users":1,"events":2}\n')
    assert cli.main(["--env-file", os.devnull, "init-db"]) == 0
    container = str(tmp_path / "copy" / CONTAINER)
    assert cli.main(["--env-file", os.devnull, "load-usage", "--path", container]) == 0
    assert "1 file, 1 line read, 1 staged, 0 rejected" in capsys.readouterr().out
    wh = DuckDBWarehouse(settings_env["DUCKDB_PATH"])
    try:
        assert wh.query("SELECT company_id FROM stg.product_usage") == [("a",)]
    finally:
        wh.close()
