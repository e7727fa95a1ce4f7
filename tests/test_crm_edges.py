"""CRM exports of the kinds issue 15 names, in shapes its field cases did not: each through
the real loader into a real DuckDB file, with rows, fields and reasons asserted.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from company_activity.errors import DataError
from company_activity.staging import CrmFormat
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from tests.test_crm_field_cases import HEADER, load, rejected, staged


def test_a_cr_alone_ends_a_line_in_a_file_that_also_has_lf_endings(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    # A file edited on two systems: CRLF, LF and CR-alone endings mixed. A CR outside quotes
    # ends the record (as spreadsheets read it); today the two records around it were one
    # "malformed CSV" reject and the second company never reached staging.
    content = (
        f"{HEADER}\r\n"
        "c1,Alpha,US,saas,2025-11-20\r"
        "c2,Beta,DE,retail,\n"
        'c3,"Gamma\rDelta",FR,food,\r\n'
        "c4,Epsilon,GB,x,2025-11-21\r"
    )
    result = load(warehouse, tmp_path, content.encode())
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (4, 4, 0)
    rows = staged(warehouse)
    assert {line: r["company_id"] for line, r in rows.items()} == {
        2: "c1",
        3: "c2",
        4: "c3",
        6: "c4",
    }
    assert rows[2]["raw_line"] == "c1,Alpha,US,saas,2025-11-20"
    assert rows[4]["company_name"] == "Gamma\rDelta"  # inside quotes a CR is data
    assert rows[6]["raw_line"] == "c4,Epsilon,GB,x,2025-11-21"
    assert rejected(warehouse) == {}


def test_a_cr_alone_in_a_utf16_file_with_lf_endings(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    content = f"{HEADER}\r\nc1,Alpha,US,saas,\rc2,Beta,DE,retail,\r\n"
    result = load(warehouse, tmp_path, b"\xff\xfe" + content.encode("utf-16-le"))
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (2, 2, 0)
    assert [r["company_id"] for r in staged(warehouse).values()] == ["c1", "c2"]


@pytest.mark.parametrize(
    "repeat",
    [
        HEADER,  # two exports pasted together: a plain file (Arrow's path)
        '"Company_ID","Company_Name","Country","Industry_Tag","Last_Contact_At"',  # quoted
    ],
)
def test_a_repeated_header_row_is_not_a_company(
    repeat: str, warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    # Today the second header was staged as a company "company_id" named "company_name" in
    # country "country", and reached the dimension.
    content = f"{HEADER}\nc1,Alpha,US,saas,\n{repeat}\nc2,Beta,DE,retail,\n"
    result = load(warehouse, tmp_path, content.encode())
    assert (result.lines_read, result.lines_staged, result.lines_rejected) == (3, 2, 1)
    assert [r["company_id"] for r in staged(warehouse).values()] == ["c1", "c2"]
    assert rejected(warehouse) == {3: "a repeated header row (the names of line 1)"}


def test_a_company_whose_id_is_the_header_name_still_loads(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    content = f"{HEADER}\ncompany_id,Literally Named Inc,US,saas,\n"
    result = load(warehouse, tmp_path, content.encode())
    assert (result.lines_staged, result.lines_rejected) == (1, 0)


def test_a_reject_names_no_company_it_cannot_know(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    # The model flags (company, date) pairs by stg.quarantine.company_id: an id read through a
    # replacement character (today "c\ufffd1") or a repeated header ("company_id") would flag a
    # company that does not exist. A bad byte elsewhere leaves the id known.
    content = (
        f"{HEADER}\n".encode()
        + b"c\xe91,Caf\xe9,FR,food,\n"
        + b"c2,Bad\xff name,DE,x,\n"
        + f"{HEADER}\n".encode()
        + b"c3,Gamma,US,saas,\n"
    )
    result = load(warehouse, tmp_path, content)
    assert (result.lines_staged, result.lines_rejected) == (1, 3)
    ids: dict[int, str | None] = dict(
        warehouse.query(
            "SELECT src_line_number, company_id FROM stg.quarantine WHERE source = 'crm'"
        )
    )
    assert ids == {2: None, 3: "c2", 4: None}
    assert rejected(warehouse)[2] == "not valid UTF-8: byte 0xE9 at byte offset 62 (line 2)"


@pytest.mark.parametrize(
    ("formats", "two_digits"),
    [
        (("%d/%m/%Y",), None),  # unreadable: NULL and recorded, never the year 25
        (("%d/%m/%Y", "%d/%m/%y"), datetime(2025, 11, 20)),  # the next format reads it
    ],
)
def test_a_two_digit_year_is_never_read_as_the_first_century(
    formats: tuple[str, ...],
    two_digits: datetime | None,
    warehouse: DuckDBWarehouse,
    tmp_path: Path,
) -> None:
    # DuckDB's %Y reads "25" as the year 25 (Python's strptime needs four digits): today a
    # spreadsheet's "20/11/25" was staged as 0025-11-20 with no issue recorded.
    content = f"{HEADER}\nc1,A,US,s,20/11/25\nc2,B,DE,x,20/11/2025\nc3,C,FR,y,1/2/2025\n"
    result = load(warehouse, tmp_path, content.encode(), CrmFormat(date_formats=formats))
    rows = staged(warehouse)
    assert result.lines_staged == 3
    assert rows[2]["last_contact_at"] == two_digits
    assert rows[3]["last_contact_at"] == datetime(2025, 11, 20)
    assert rows[4]["last_contact_at"] == datetime(2025, 2, 1)
    if two_digits is None:
        assert (rows[2]["issue_field"], rows[2]["issue_value"]) == ("last_contact_at", "20/11/25")
        assert result.fields_nulled == 1
    else:
        assert result.fields_nulled == 0


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_its_bom_fails_saying_so(
    codec: str, warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    # Read as UTF-8 the header is full of NULs; today the message blamed a newline
    # ("do you need to open the file in universal-newline mode?") or missing columns.
    content = f"{HEADER}\r\nc1,Alpha,US,saas,\r\n".encode(codec)
    with pytest.raises(DataError, match="UTF-16 without its byte order mark") as caught:
        load(warehouse, tmp_path, content)
    assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)
