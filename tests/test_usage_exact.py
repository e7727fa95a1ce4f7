"""Usage lines as real APIs write them (issue 15): a BOM, integral numbers, duplicate keys.

Field cases 04, 22 and 23 (tests/data/field_cases, from /work/shared/field-cases) through every
path that reads raw lines: a raw-zone partition, a folder of files (`load-usage --path`), and
the Azure SQL bulk path (its rules run in a private DuckDB; a recording fake stands in for
SQL Server, see tests/test_staging_azuresql.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from company_activity.staging import load_usage, load_usage_files
from company_activity.staging.exactjson import integer_text, read_line
from company_activity.staging.folder import dated_files
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.azuresql import AzureSqlWarehouse
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from tests.test_load_usage import CONTAINER, DAY, fixed_clock, outcome, write_partition
from tests.test_staging_azuresql import (  # noqa: F401 - fixtures
    Recorder,
    assert_staged_alike,
    azure,
    recorder,
)

FIELD = Path(__file__).parent / "data" / "field_cases"
USERS_MAX = 2_147_483_647
EVENTS_MAX = 99_999_999_999_999

# Field case 22: CRLF endings, no final newline, a blank line; the README's right results.
EXPECTED_22: dict[int, Any] = {
    1: ("c1", 12, 340),  # strings holding integers
    2: ("c2", 12, 340),  # 12.0 is an integer
    3: ("c3", 100, 340),  # so is 1e2
    4: f"active_users is out of range (at most {USERS_MAX}), got 3000000000",
    5: f"events is out of range (at most {EVENTS_MAX}), got 9223372036854775808",
    6: "active_users must be an integer, got NaN",
    7: "events must be an integer, got Infinity",
    8: "empty line",
    9: ("c9", 5, 10),  # a nested object and a null ts are fine
    10: ("c10", 5, 10),  # no final newline
}


def results(wh: DuckDBWarehouse, day: date = DAY) -> dict[int, Any]:
    """line -> (company, users, events) when staged, else the reason."""
    found: dict[int, Any] = dict(outcome(wh, day))
    for line, company, users, events in wh.query(
        "SELECT src_line_number, company_id, active_users, events FROM stg.product_usage "
        "WHERE file_date = CAST(@d AS DATE)",
        {"d": day},
    ):
        found[line] = (company, users, events)
    return found


def field_bytes(case: str) -> bytes:
    return (FIELD / case / f"usage_{DAY}.ndjson").read_bytes()


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


def load_partition(wh: Any, store: LocalFolderStore, body: bytes, gz: bool = False) -> Any:
    write_partition(store, DAY, [body], gzipped=[gz])
    return load_usage(wh, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)


def load_folder(wh: DuckDBWarehouse, folder: Path) -> Any:
    (files,) = dated_files(folder).values()
    return load_usage_files(wh, DAY, files, run_id="run-1", clock=fixed_clock)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_bom_is_not_part_of_line_one(
    warehouse: DuckDBWarehouse, store: LocalFolderStore, gz: bool
) -> None:
    body = field_bytes("04_ndjson_bom")
    result = load_partition(warehouse, store, body, gz)
    assert (result.lines_staged, result.lines_rejected) == (2, 0)
    assert results(warehouse) == {1: ("c100", 5, 40), 2: ("c101", 3, 12)}
    (raw,) = warehouse.query("SELECT raw_json FROM stg.product_usage WHERE src_line_number = 1")
    assert raw[0] == '{"company_id":"c100","active_users":5,"events":40}'
    assert result.checksum is not None  # the hash is of the bytes as stored, BOM included


def test_bom_through_a_folder(warehouse: DuckDBWarehouse) -> None:
    result = load_folder(warehouse, FIELD / "04_ndjson_bom")
    assert (result.lines_staged, result.lines_rejected) == (2, 0)


def test_number_shapes_field_case(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    result = load_partition(warehouse, store, field_bytes("22_ndjson_number_shapes"))
    assert results(warehouse) == EXPECTED_22
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (10, 5, 5)


def test_number_shapes_through_a_folder(warehouse: DuckDBWarehouse) -> None:
    load_folder(warehouse, FIELD / "22_ndjson_number_shapes")
    assert results(warehouse) == EXPECTED_22


def test_duplicate_key_field_case(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    load_partition(warehouse, store, field_bytes("23_ndjson_duplicate_key"))
    assert results(warehouse) == {1: 'duplicate key "active_users"'}
    # Which company the line is about is as ambiguous as its values: no id is recorded.
    (company,) = warehouse.query("SELECT company_id FROM stg.quarantine")
    assert company == (None,)


def test_duplicate_key_through_a_folder(warehouse: DuckDBWarehouse) -> None:
    load_folder(warehouse, FIELD / "23_ndjson_duplicate_key")
    assert results(warehouse) == {1: 'duplicate key "active_users"'}


_ROW = '"company_id":"c1","active_users":{users},"events":{events}'

# line -> expected outcome, for numbers and keys of every shape.
SHAPES: list[tuple[str, Any]] = [
    ("{" + _ROW.format(users="1.2e1", events="120e-1") + "}", ("c1", 12, 12)),
    ("{" + _ROW.format(users="-0", events="0.0") + "}", ("c1", 0, 0)),
    ("{" + _ROW.format(users="5", events=str(EVENTS_MAX)) + "}", ("c1", 5, EVENTS_MAX)),
    (
        "{" + _ROW.format(users="5", events="1e14") + "}",
        f"events is out of range (at most {EVENTS_MAX}), got 1e14",
    ),
    (
        "{" + _ROW.format(users="5", events="100000000000000") + "}",
        f"events is out of range (at most {EVENTS_MAX}), got 100000000000000",
    ),
    (
        "{" + _ROW.format(users="5", events="1E400") + "}",
        f"events is out of range (at most {EVENTS_MAX}), got 1E400",
    ),
    (
        "{" + _ROW.format(users="2147483648.0", events="1") + "}",
        f"active_users is out of range (at most {USERS_MAX}), got 2147483648.0",
    ),
    (
        "{" + _ROW.format(users="12.5", events="1") + "}",
        "active_users must be an integer, got 12.5",
    ),
    # A double would call this 99999999999999.0: only the exact decimal value decides.
    (
        "{" + _ROW.format(users="1", events="99999999999999.00001") + "}",
        "events must be an integer, got 99999999999999.00001",
    ),
    (
        "{" + _ROW.format(users="-5.0", events="1") + "}",
        "active_users must not be negative, got -5.0",
    ),
    # A negative value is named as negative whatever its size, on both parsing paths.
    (
        "{" + _ROW.format(users="1", events="-123456789012345678901234567890") + "}",
        "events must not be negative, got -123456789012345678901234567890",
    ),
    (
        "{" + _ROW.format(users="1", events="-9223372036854775809") + "}",
        "events must not be negative, got -9223372036854775809",
    ),
    (
        "{" + _ROW.format(users="-1e30", events="1") + "}",
        "active_users must not be negative, got -1e30",
    ),
    ("{" + _ROW.format(users="100.000", events="1E2") + "}", ("c1", 100, 100)),
    (
        "{" + _ROW.format(users="true", events="1") + "}",
        "active_users must be an integer, got true",
    ),
    # A quoted value shows its invisible characters: it would read as valid otherwise.
    (
        "{" + _ROW.format(users='"12\\u200b"', events="1") + "}",
        "active_users must be an integer, got 12<U+200B>",
    ),
    (
        "{" + _ROW.format(users="1", events="1") + f',"date":"{DAY}\\u0000"}}',
        f"date must be a YYYY-MM-DD string, got {DAY}<U+0000>",
    ),
    # A string is read as written: digits only.
    (
        "{" + _ROW.format(users='"12.0"', events="1") + "}",
        "active_users must be an integer, got 12.0",
    ),
    # Duplicate keys, at the top level and nested, beside null-valued and unknown keys.
    (
        '{"company_id":"c1","company_id":"c2","active_users":1,"events":1}',
        'duplicate key "company_id"',
    ),
    ("{" + _ROW.format(users="1", events="1") + ',"ts":null,"ts":null}', 'duplicate key "ts"'),
    ("{" + _ROW.format(users="1", events="1") + ',"plan":"a","plan":"b"}', 'duplicate key "plan"'),
    ("{" + _ROW.format(users="1", events="1") + ',"meta":{"x":1,"x":2}}', 'duplicate key "x"'),
    # The same key spelt with an escape is the same key.
    (
        '{"company_id":"c1","\\u0063ompany_id":"c2","active_users":1,"events":1}',
        'duplicate key "company_id"',
    ),
    ("{" + _ROW.format(users="1", events="1") + ',"m":{"a":1,"\\u0061":2}}', 'duplicate key "a"'),
    ("{" + _ROW.format(users="1", events="1") + ',"m":[{"n":{"b":1,"b":2}}]}', 'duplicate key "b"'),
    ("{" + _ROW.format(users="1", events="1") + ',"tags":[{"k":1},{"k":2}]}', ("c1", 1, 1)),
    ("{" + _ROW.format(users="1", events="1") + ',"plan":"pro"}', ("c1", 1, 1)),
    # A trailing comma is strict JSON's to refuse, whatever else the line holds.
    (
        "{" + _ROW.format(users="1.5", events="1") + ",}",
        "not valid JSON (Expecting property name enclosed in double quotes)",
    ),
]


def shapes_body() -> bytes:
    return "\n".join(line for line, _ in SHAPES).encode()


def test_every_number_and_key_shape(warehouse: DuckDBWarehouse, store: LocalFolderStore) -> None:
    load_partition(warehouse, store, shapes_body())
    expected = {number: result for number, (_, result) in enumerate(SHAPES, start=1)}
    assert results(warehouse) == expected


def test_azure_path_stages_the_same_rows(
    azure: AzureSqlWarehouse,  # noqa: F811
    recorder: Recorder,  # noqa: F811
    store: LocalFolderStore,
    warehouse: DuckDBWarehouse,
) -> None:
    body = shapes_body() + b"\n" + field_bytes("22_ndjson_number_shapes")
    load_partition(azure, store, body)
    load_usage(warehouse, store, DAY, container=CONTAINER, run_id="run-1", clock=fixed_clock)
    assert_staged_alike(recorder, warehouse)


@pytest.mark.parametrize(
    ("token", "digits"),
    [
        ("12.0", "12"),
        ("1.2e1", "12"),
        ("120e-1", "12"),
        ("1E2", "100"),
        ("-0.0", "0"),
        ("12.5", None),
        ("0.5", None),
        ("NaN", None),
        ("-Infinity", None),
        ("1e999999999", "9" * 40),  # beyond every integer type, never materialised
        ("-1e400", "-" + "9" * 40),
    ],
)
def test_integer_text(token: str, digits: str | None) -> None:
    assert integer_text(token) == digits


def test_read_line_keeps_tokens_as_sent() -> None:
    reading = read_line('{"active_users":1e2,"events":"7","x":1.0}')
    assert reading.reason is None and reading.duplicate_key is None
    assert reading.tokens == {"active_users": "1e2"}  # the string "7" is not a number token
