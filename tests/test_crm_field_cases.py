"""CRM exports as real systems write them (issue 15), each through the real loader.

The files in tests/data/field_cases/ are the field cases of the issue (spreadsheet exports
that drop trailing empty cells, a `;` export, dates re-saved by a US spreadsheet and a serial
date, ids that differ by case and spaces). The other inputs are built here: every encoding,
delimiter and header variant the loader accepts, each loaded into a real DuckDB file with the
staged rows, fields and quarantine reasons asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity.errors import ConfigError, DataError
from company_activity.model import merge as model
from company_activity.settings import Settings
from company_activity.staging import CrmFormat, LoadResult, load_crm
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate

CASES = Path(__file__).parent / "data" / "field_cases"
DAY = date(2025, 11, 23)
LOADED_AT = datetime(2025, 11, 24, 2, 0)
HEADER = "company_id,company_name,country,industry_tag,last_contact_at"


def fixed_clock() -> datetime:
    return LOADED_AT


def load(
    wh: DuckDBWarehouse,
    tmp_path: Path,
    content: bytes | Path,
    fmt: CrmFormat | None = None,
    day: date = DAY,
) -> LoadResult:
    if isinstance(content, Path):
        file = content
    else:
        file = tmp_path / "export.csv"
        file.write_bytes(content)
    store = LocalFolderStore(tmp_path / "blob")
    return load_crm(
        wh,
        store,
        day,
        crm_blob_path="raw/crm/",
        run_id="run-1",
        file=file,
        clock=fixed_clock,
        fmt=fmt,
    )


def staged(wh: DuckDBWarehouse) -> dict[int, dict[str, Any]]:
    rows = wh.query_dicts("SELECT * FROM stg.crm_companies ORDER BY src_line_number")
    return {r["src_line_number"]: r for r in rows}


def rejected(wh: DuckDBWarehouse) -> dict[int, str]:
    return dict(wh.query("SELECT src_line_number, reason FROM stg.quarantine WHERE source = 'crm'"))


def attributes(wh: DuckDBWarehouse) -> dict[int, tuple[Any, ...]]:
    return {
        line: (r["company_id"], r["company_name"], r["country"], r["industry_tag"])
        for line, r in staged(wh).items()
    }


# -- the issue's field cases ----------------------------------------------------------------


def test_trailing_empty_cells_omitted_by_a_spreadsheet_load_blank(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    result = load(warehouse, tmp_path, CASES / "01_excel_trailing_empty_cols_crm_2025-11-23.csv")
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (3, 3, 0)
    rows = staged(warehouse)
    assert attributes(warehouse) == {
        2: ("c100", "Alpha Ltd", "US", "saas"),
        3: ("c101", "Beta GmbH", "DE", "retail"),
        4: ("c102", "Gamma SA", "FR", "food"),
    }
    assert rows[2]["last_contact_at"] == datetime(2025, 11, 20)
    assert rows[3]["last_contact_at"] is None and rows[4]["last_contact_at"] is None
    assert rows[3]["issue_field"] is None  # blank is not unreadable
    assert rows[3]["raw_line"] == "c101,Beta GmbH,DE,retail"


def test_a_trailing_extra_column_left_empty_loads(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    result = load(warehouse, tmp_path, CASES / "01b_excel_trailing_extra_col_crm_2025-11-23.csv")
    assert (result.lines_staged, result.lines_rejected) == (3, 0)
    rows = staged(warehouse)
    assert [r["last_contact_at"] for r in rows.values()] == [
        datetime(2025, 11, 20),
        datetime(2025, 11, 21),
        datetime(2025, 11, 22),
    ]


def test_a_record_with_more_fields_than_the_header_is_still_rejected(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    data = f"{HEADER}\r\nc1,A,US,x,2025-11-20,extra\r\nc2,B\r\n,C,US\r\n".encode()
    result = load(warehouse, tmp_path, data)
    assert (result.lines_staged, result.lines_rejected) == (1, 2)
    assert rejected(warehouse) == {
        2: "record has 6 fields, the header has 5",
        4: "company_id is blank",
    }
    assert attributes(warehouse) == {3: ("c2", "B", None, None)}


def test_a_short_record_without_the_id_is_rejected_naming_it(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    data = b"company_name,country,industry_tag,last_contact_at,company_id\nAcme,US\nB,DE,x,,b1\n"
    load(warehouse, tmp_path, data)
    assert rejected(warehouse) == {
        2: "record has 2 fields, the header has 5: company_id is missing"
    }
    assert attributes(warehouse) == {3: ("b1", "B", "DE", "x")}


def test_a_semicolon_export_loads(warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    result = load(warehouse, tmp_path, CASES / "03_semicolon_delimiter_crm_2025-11-23.csv")
    assert (result.lines_staged, result.lines_rejected) == (2, 0)
    assert attributes(warehouse) == {
        2: ("c300", "Müller AG", "DE", "retail"),
        3: ("c301", "Schmidt; Söhne", "DE", "food"),
    }
    assert staged(warehouse)[2]["last_contact_at"] == datetime(2025, 11, 20)


US_DATES = CASES / "11_excel_resaved_us_and_serial_dates_crm_2025-11-23.csv"


def test_unreadable_dates_keep_the_company_and_record_why(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    result = load(warehouse, tmp_path, US_DATES)
    assert (result.lines_staged, result.lines_rejected, result.fields_nulled) == (3, 0, 3)
    rows = staged(warehouse)
    assert [r["last_contact_at"] for r in rows.values()] == [None, None, None]
    issues = [(r["issue_field"], r["issue_value"], r["issue_reason"]) for r in rows.values()]
    reason = "not an ISO-8601 date or timestamp"
    assert issues == [
        ("last_contact_at", "11/20/2025", reason),
        ("last_contact_at", "11/21/2025", reason),
        ("last_contact_at", "45982", reason),
    ]
    assert "3 staged with an unreadable field NULL" in result.summary()
    audit = warehouse.query_dicts("SELECT * FROM ops.load_audits")[0]
    assert (audit["lines_staged"], audit["fields_nulled"]) == (3, 3)
    # Names and countries still reach the dimension.
    model.merge_dimension(warehouse, DAY, "run-1", LOADED_AT)
    names = warehouse.query(
        "SELECT company_id, company_name, country, last_contact_at FROM dim.companies "
        "ORDER BY company_id"
    )
    assert names == [
        ("c100", "Alpha Ltd", "US", None),
        ("c101", "Beta GmbH", "DE", None),
        ("c102", "Gamma SA", "FR", None),
    ]


def test_us_dates_read_when_the_setting_lists_the_format(
    warehouse: DuckDBWarehouse, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    fmt = CrmFormat.from_settings(make_settings(CRM_DATE_FORMATS="%d.%m.%Y; %m/%d/%Y"))
    result = load(warehouse, tmp_path, US_DATES, fmt)
    assert (result.lines_staged, result.fields_nulled) == (3, 1)
    rows = staged(warehouse)
    assert [r["last_contact_at"] for r in rows.values()] == [
        datetime(2025, 11, 20),
        datetime(2025, 11, 21),
        None,
    ]
    assert (rows[4]["issue_value"], rows[4]["issue_reason"]) == (
        "45982",
        "not an ISO-8601 date or timestamp or a CRM_DATE_FORMATS date",
    )
    assert rows[2]["issue_field"] is None


def test_a_file_whose_records_are_all_rejected_says_so(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    data = f"{HEADER}\n,A,US,x,\nc1,B,US,x,2025-11-01,extra\n".encode()
    result = load(warehouse, tmp_path, data)
    assert (result.status, result.lines_read, result.lines_staged, result.lines_rejected) == (
        "succeeded",
        2,
        0,
        2,
    )
    assert result.all_rejected
    assert "every record was rejected" in result.summary()
    header_only = load(warehouse, tmp_path, f"{HEADER}\n".encode())
    assert not header_only.all_rejected


def test_ids_differing_by_case_and_spaces_are_one_company(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    result = load(warehouse, tmp_path, CASES / "13_case_space_nbsp_dupe_ids_crm_2025-11-23.csv")
    assert (result.lines_staged, result.lines_rejected) == (3, 0)
    ids = [(r["company_id"], r["company_id_raw"]) for r in staged(warehouse).values()]
    assert ids[:2] == [("c100", "C100"), ("c100", "c100 ")]
    assert ids[2] == ("c101", "c101\u00a0")
    model.merge_dimension(warehouse, DAY, "run-1", LOADED_AT)
    assert warehouse.query("SELECT company_id, company_name FROM dim.companies ORDER BY 1") == [
        ("c100", "Alpha New"),
        ("c101", "Beta GmbH"),
    ]


# -- the seed's format and header names ----------------------------------------------------


SEED_HEADER = "company_id,name,country,industry_tag,last_contact_at,file_date,src_file_name"


def test_the_seed_header_loads_and_file_date_must_be_the_snapshot(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    data = (
        f"{SEED_HEADER}\n"
        "c1,Acme,US,saas,2025-11-20,2025-11-23,crm.csv\n"
        "c2,Beta,DE,retail,,,crm.csv\n"
        "c3,Gamma,FR,food,,2025-11-22,crm.csv\n"
        "c4,Delta,FR,food,,23/11/2025,crm.csv\n"
    ).encode()
    result = load(warehouse, tmp_path, data)
    assert (result.lines_staged, result.lines_rejected) == (2, 2)
    assert attributes(warehouse) == {
        2: ("c1", "Acme", "US", "saas"),
        3: ("c2", "Beta", "DE", "retail"),
    }
    assert rejected(warehouse) == {
        4: "file_date 2025-11-22 does not match the snapshot date 2025-11-23",
        5: "file_date is not a date: 23/11/2025",
    }


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "company_id,name,company_name,country,industry_tag,last_contact_at",
            "columns 'name' and 'company_name' both give company_name",
        ),
        (
            "company_id,Company_ID,name,country,industry_tag,last_contact_at",
            "column company_id appears twice",
        ),
        ("company_id,country,industry_tag,last_contact_at", "has no company_name column"),
    ],
)
def test_header_errors_name_the_columns(
    warehouse: DuckDBWarehouse, tmp_path: Path, header: str, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        load(warehouse, tmp_path, f"{header}\nc1,a,b,c,d,e\n".encode())


def test_a_setting_maps_another_exports_headers(
    warehouse: DuckDBWarehouse, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    mapping = (
        "Record ID=company_id; Company name=company_name; Country/Region=country; "
        "Industry=industry_tag; Last Contacted=last_contact_at"
    )
    fmt = CrmFormat.from_settings(make_settings(CRM_COLUMN_MAP=mapping))
    data = (
        b'"Record ID","Company name","Country/Region","Industry","Last Contacted","Owner"\n'
        b'"901","Acme Corp","US","SOFTWARE","2025-11-20 14:05","Ann"\n'
    )
    result = load(warehouse, tmp_path, data, fmt)
    assert result.lines_staged == 1
    assert attributes(warehouse) == {2: ("901", "Acme Corp", "US", "SOFTWARE")}
    assert staged(warehouse)[2]["last_contact_at"] == datetime(2025, 11, 20, 14, 5)
    with pytest.raises(DataError, match="has no company_id"):
        load(warehouse, tmp_path, data)  # without the mapping


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CRM_COLUMN_MAP": "Record ID"}, "CRM_COLUMN_MAP: 'Record ID' must be"),
        ({"CRM_COLUMN_MAP": "Record ID=id"}, "CRM_COLUMN_MAP: 'Record ID=id' must be"),
        ({"CRM_COLUMN_MAP": "A=country;a=company_id"}, "maps 'a' twice"),
        ({"CRM_DATE_FORMATS": "%H:%M"}, "'%H:%M' is not a usable date format"),
        ({"CRM_DATE_FORMATS": "%m/%d/%Y %z"}, "%z is not supported"),
        ({"CRM_ENCODING": "shift_jis"}, "CRM_ENCODING must be auto or a single-byte"),
        ({"CRM_ENCODING": "no-such-codec"}, "CRM_ENCODING must be auto or a single-byte"),
        ({"CRM_DELIMITER": ":"}, "CRM_DELIMITER must be one of auto, comma"),
    ],
)
def test_bad_crm_settings_fail_at_start_up(
    make_settings: Callable[..., Settings], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(**env)


# -- delimiters and encodings ---------------------------------------------------------------

ROWS = [
    ("c1", "Acme, Inc.", "US", "saas", "2025-11-20T14:05:00Z"),
    ("c2", "Zürich Räder AG", "CH", "retail", ""),
    ("c3", "Café Crème", "FR", "food", "2025-11-21"),
]
EXPECTED = {
    2: ("c1", "Acme, Inc.", "US", "saas"),
    3: ("c2", "Zürich Räder AG", "CH", "retail"),
    4: ("c3", "Café Crème", "FR", "food"),
}


def export(delimiter: str, ending: str = "\r\n") -> str:
    def cell(value: str) -> str:
        return f'"{value}"' if delimiter in value or "," in value else value

    lines = [delimiter.join(HEADER.split(","))]
    lines += [delimiter.join(cell(v) for v in row) for row in ROWS]
    return ending.join(lines) + ending


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected_from_the_header(
    warehouse: DuckDBWarehouse, tmp_path: Path, delimiter: str
) -> None:
    result = load(warehouse, tmp_path, export(delimiter).encode())
    assert (result.lines_staged, result.lines_rejected) == (3, 0)
    assert attributes(warehouse) == EXPECTED
    assert staged(warehouse)[2]["last_contact_at"] == datetime(2025, 11, 20, 14, 5)


def test_a_forced_delimiter_wins_over_detection(
    warehouse: DuckDBWarehouse, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    # As many commas as pipes in the header: detection alone would take the comma.
    long_name = "Name, legal, as registered, in full, please"
    data = (
        f"company_id|{long_name}|country|industry_tag|last_contact_at\nc1|Acme, Inc.|US|saas|\n"
    ).encode()
    with pytest.raises(DataError, match="has no company_id"):
        load(warehouse, tmp_path, data)
    fmt = CrmFormat.from_settings(
        make_settings(CRM_DELIMITER="pipe", CRM_COLUMN_MAP=f"{long_name}=company_name")
    )
    load(warehouse, tmp_path, data, fmt)
    assert attributes(warehouse) == {2: ("c1", "Acme, Inc.", "US", "saas")}
    fmt = CrmFormat.from_settings(make_settings(CRM_DELIMITER="semicolon"))
    with pytest.raises(DataError, match="has no company_id"):
        load(warehouse, tmp_path, export(",").encode(), fmt)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "cp1252"])
def test_cr_line_endings_of_an_old_mac_spreadsheet_load(
    warehouse: DuckDBWarehouse,
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    encoding: str,
) -> None:
    setting = "cp1252" if encoding == "cp1252" else "auto"
    fmt = CrmFormat.from_settings(make_settings(CRM_ENCODING=setting))
    result = load(warehouse, tmp_path, export(";", ending="\r").encode(encoding), fmt)
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (3, 3, 0)
    assert attributes(warehouse) == EXPECTED


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_an_excel_sep_line_names_the_delimiter_and_is_not_a_record(
    warehouse: DuckDBWarehouse, tmp_path: Path, encoding: str
) -> None:
    data = ("sep=;\r\n" + export(";")).encode(encoding)
    result = load(warehouse, tmp_path, data)
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (3, 3, 0)
    assert {line - 1: values for line, values in attributes(warehouse).items()} == EXPECTED
    # A comma header after `sep=|`: the file contradicts itself, and the message shows it.
    with pytest.raises(DataError, match="has no company_id"):
        load(warehouse, tmp_path, ("sep=|\n" + export(",")).encode(encoding))


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8"),
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
        lambda text: text.encode("utf-16"),  # with its BOM, the machine's byte order
        lambda text: b"\xff\xfe" + text.encode("utf-16-le"),
        lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_utf8_and_utf16_load_by_default(
    warehouse: DuckDBWarehouse, tmp_path: Path, encode: Callable[[str], bytes]
) -> None:
    for delimiter in (",", "\t"):
        result = load(warehouse, tmp_path, encode(export(delimiter)))
        assert (result.lines_staged, result.lines_rejected) == (3, 0)
        assert attributes(warehouse) == EXPECTED


def test_a_legacy_single_byte_export_loads_with_the_setting(
    warehouse: DuckDBWarehouse, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    data = export(";").encode("cp1252")
    fmt = CrmFormat.from_settings(make_settings(CRM_ENCODING="cp1252"))
    result = load(warehouse, tmp_path, data, fmt)
    assert (result.lines_staged, result.lines_rejected) == (3, 0)
    assert attributes(warehouse) == EXPECTED
    # Without the setting the same bytes are not UTF-8: those rows are quarantined.
    load(warehouse, tmp_path, data)
    u_umlaut, e_acute = data.index(b"\xfc"), data.index(b"\xe9")
    assert rejected(warehouse) == {
        3: f"not valid UTF-8: byte 0xFC at byte offset {u_umlaut} (line 3)",
        4: f"not valid UTF-8: byte 0xE9 at byte offset {e_acute} (line 4)",
    }
    assert list(attributes(warehouse).values()) == [EXPECTED[2]]


def test_undecodable_bytes_quarantine_the_row_naming_the_offset(
    warehouse: DuckDBWarehouse, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    # 0x81 has no character in cp1252; a lone surrogate is not UTF-16.
    data = f"{HEADER}\nc1,A,US,x,\nc2,B".encode("cp1252") + b"\x81" + b",US,x,\nc3,C,US,x,\n"
    load(warehouse, tmp_path, data, CrmFormat.from_settings(make_settings(CRM_ENCODING="cp1252")))
    offset = data.index(b"\x81")
    assert rejected(warehouse) == {
        3: f"not valid cp1252: byte 0x81 at byte offset {offset} (line 3)"
    }
    assert sorted(r[0] for r in attributes(warehouse).values()) == ["c1", "c3"]
    text = f"{HEADER}\nc1,A,US,x,\n".encode("utf-16-le")
    bad = b"\xff\xfe" + text + b"c\x00\x00\xd8,\x00\n\x00" + "c3,C,US,x,\n".encode("utf-16-le")
    load(warehouse, tmp_path, bad)
    offset = 2 + len(text) + 2
    assert rejected(warehouse) == {
        3: f"not valid UTF-16: byte 0x00 at byte offset {offset} (line 3)"
    }
    assert sorted(r[0] for r in attributes(warehouse).values()) == ["c1", "c3"]


def test_migration_3_adds_the_issue_columns_and_keeps_rows(tmp_path: Path) -> None:
    """A warehouse from before the issue columns is upgraded in place, rows kept."""
    wh = DuckDBWarehouse(tmp_path / "old.duckdb")
    try:
        migrate(wh, LOADED_AT)
        for table, column in (
            ("stg.crm_companies", "issue_field"),
            ("stg.crm_companies", "issue_value"),
            ("stg.crm_companies", "issue_reason"),
            ("ops.load_audits", "fields_nulled"),
        ):
            wh.execute_native(f"ALTER TABLE {table} DROP COLUMN {column}")
        wh.execute("DELETE FROM ops.schema_migrations WHERE version = 3")
        wh.execute(
            "INSERT INTO stg.crm_companies (snapshot_date, company_id, company_id_raw, "
            "src_file_name, src_line_number, run_id, loaded_at, raw_line) VALUES "
            "(CAST(@d AS DATE), 'c1', 'c1', 'f.csv', 2, 'r', CAST(@ts AS DATETIME2(6)), 'c1')",
            {"d": DAY, "ts": LOADED_AT},
        )
        assert migrate(wh, LOADED_AT) == [3]
        assert wh.query("SELECT company_id, issue_field FROM stg.crm_companies") == [("c1", None)]
        result = load(wh, tmp_path, US_DATES)
        assert wh.scalar("SELECT fields_nulled FROM ops.load_audits") == result.fields_nulled == 3
    finally:
        wh.close()
