"""One canonical company id everywhere (issue 14): staging of both sources, the model,
validation and rollback, through the real loaders on DuckDB files.

Canonical: Unicode White_Space trimmed, lower case, NFC; control and invisible format
characters quarantined. Field case 13 (ids differing by case, spaces and a no-break space) is
in tests/data/field_cases.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from company_activity.model import merge as model
from company_activity.model.rollback import rollback
from company_activity.model.validation import check_canonical_keys, validate
from company_activity.staging import load_crm, load_usage_files
from company_activity.staging.ids import WHITE_SPACE, canonical_ids
from company_activity.staging.usage import local_file
from company_activity.storage.local import LocalFolderStore
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

FIELD = Path(__file__).parent / "data" / "field_cases"
D1 = date(2025, 11, 23)
D2 = date(2025, 11, 24)
RUN_TS = datetime(2025, 11, 25, 6, 0)


def clock() -> datetime:
    return RUN_TS


def usage_line(company: str, users: int = 3, events: int = 30) -> str:
    return json.dumps({"company_id": company, "active_users": users, "events": events})


def load_usage_lines(
    wh: DuckDBWarehouse, tmp_path: Path, day: date, lines: list[str], at: datetime = RUN_TS
) -> Any:
    path = tmp_path / f"usage_{day}.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_usage_file(wh, path, day, at)


def load_usage_file(wh: DuckDBWarehouse, path: Path, day: date, at: datetime = RUN_TS) -> Any:
    files = [local_file(path, path.name)]
    return load_usage_files(wh, day, files, run_id="load", clock=lambda: at)


def load_crm_file(wh: DuckDBWarehouse, tmp_path: Path, day: date, path: Path) -> Any:
    store = LocalFolderStore(tmp_path / "blob")
    return load_crm(wh, store, day, crm_blob_path="raw/crm/", run_id="load", file=path, clock=clock)


def companies(wh: DuckDBWarehouse) -> list[str]:
    return [r[0] for r in wh.query("SELECT company_id FROM dim.companies ORDER BY company_id")]


def reasons(wh: DuckDBWarehouse, source: str) -> dict[int, tuple[str, str | None]]:
    return {
        line: (reason, company)
        for line, reason, company in wh.query(
            "SELECT src_line_number, reason, company_id FROM stg.quarantine WHERE source = @s",
            {"s": source},
        )
    }


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("c101", "c101"),
        (" C101 ", "c101"),
        ("c101\u00a0", "c101"),  # no-break space
        ("\u2007c101\u202f", "c101"),  # figure space, narrow no-break space
        ("\u3000c101\u3000", "c101"),  # ideographic space
        ("\t c101\r\n\u0085", "c101"),
        ("c 101", "c 101"),  # inside an id a space is data
        ("Café", "café"),
        ("Cafe\u0301", "café"),  # decomposed: NFC makes it the same id
        ("ÅNGSTRÖM", "ångström"),
        ("株式会社テスト", "株式会社テスト"),
        ("", None),
        ("\u00a0\u3000", None),
        ("c101\x00", None),  # NUL
        ("c\x1b101", None),  # a control character inside
        ("c101\u200b", None),  # zero-width space (format, not White_Space)
        ("\ufeffc101", None),  # a stray byte order mark
        ("c\u00ad101", None),  # soft hyphen
        ("c\u3000101", "c\u3000101"),  # an ideographic space inside is data, like a space
        ("c101\u2028", "c101"),  # a line separator at an end is White_Space: trimmed
        ("c\u2028101", None),  # inside, it breaks the line like LF does
        ("c\u2029101", None),  # paragraph separator
        ("c101\u180e", None),  # Mongolian vowel separator: format (Cf), no longer a space
        ("c101\u034f", None),  # combining grapheme joiner: invisible though not Cf
        ("\u3164c101", None),  # Hangul filler
        ("c101\ufe0f", None),  # variation selector
        ("\u0130stanbul", "istanbul"),  # DuckDB's simple lower case mapping of the dotted I
        ("\uff23101", "\uff43101"),  # fullwidth letters are other letters under NFC
        ("\u0441101", "\u0441101"),  # a Cyrillic lookalike is another id
    ],
)
def test_canonical_ids(raw: str, canonical: str | None) -> None:
    assert canonical_ids([raw]) == [canonical]


def test_white_space_is_unicodes_list() -> None:
    # PropList.txt lists 25 White_Space code points; Python's isspace() agrees on all of them.
    assert len(WHITE_SPACE) == 25
    assert all(char.isspace() for char in WHITE_SPACE)


def test_nbsp_id_is_one_company_and_validate_passes(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    load_usage_lines(warehouse, tmp_path, D1, [usage_line("c101"), usage_line("c102")])
    load_usage_lines(warehouse, tmp_path, D2, [usage_line("c101\u00a0"), usage_line("\u3000C102")])
    model.merge(warehouse, D1, D2, "merge", RUN_TS)
    assert companies(warehouse) == ["c101", "c102"]
    staged = warehouse.query("SELECT DISTINCT company_id FROM stg.product_usage ORDER BY 1")
    assert staged == [("c101",), ("c102",)]
    for day in (D1, D2):
        result = validate(warehouse, day)
        assert result.ok, result.summary_lines()


def test_invisible_and_control_characters_are_quarantined(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    lines = [
        usage_line("c101"),
        usage_line("c101\u200b"),
        usage_line("\ufeffc101"),
        usage_line("c\x00101"),
        usage_line("c101\x07"),
    ]
    result = load_usage_lines(warehouse, tmp_path, D1, lines)
    assert (result.lines_staged, result.lines_rejected) == (1, 4)
    assert reasons(warehouse, "usage") == {
        2: ("company_id holds an invisible format character (U+200B)", None),
        3: ("company_id holds an invisible format character (U+FEFF)", None),
        4: ("company_id holds a control character (U+0000)", None),
        5: ("company_id holds a control character (U+0007)", None),
    }


def test_every_invisible_or_line_breaking_character_inside_an_id_is_quarantined(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    # The kind, beyond the cases: line separators inside an id and invisible characters
    # outside category Cf (Default_Ignorable_Code_Point) used to make phantom companies.
    lines = [
        usage_line("c101"),
        usage_line("c1\u202801"),
        usage_line("c101\u034f"),
        usage_line("\u115fc101"),
        usage_line("c101\ufe0f"),
        usage_line("c101\u180e"),
        usage_line("c101\u2028"),  # trimmed at the end: c101
    ]
    result = load_usage_lines(warehouse, tmp_path, D1, lines)
    assert (result.lines_staged, result.lines_rejected) == (2, 5)
    assert reasons(warehouse, "usage") == {
        2: ("company_id holds a line break (U+2028)", None),
        3: ("company_id holds an invisible character (U+034F)", None),
        4: ("company_id holds an invisible character (U+115F)", None),
        5: ("company_id holds an invisible character (U+FE0F)", None),
        6: ("company_id holds an invisible format character (U+180E)", None),
    }
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    assert companies(warehouse) == ["c101"]


def test_crm_with_nul_bytes_adds_no_phantom_companies(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    crm = tmp_path / "crm_companies_2025-11-23.csv"
    crm.write_bytes(
        b"company_id,company_name,country,industry_tag,last_contact_at\n"
        b"c101,Acme,DE,saas,2025-11-20\n"
        b"c101\x00,Acme,DE,saas,2025-11-20\n"
        b"\x00c102\x00,Beta,FR,retail,\n"
        b"c103\x00\x00\x00,Gamma,US,saas,\n"
    )
    result = load_crm_file(warehouse, tmp_path, D1, crm)
    assert (result.lines_staged, result.lines_rejected) == (1, 3)
    nul = "company_id holds a control character (U+0000)"
    assert reasons(warehouse, "crm") == {3: (nul, None), 4: (nul, None), 5: (nul, None)}
    load_usage_lines(warehouse, tmp_path, D1, [usage_line("c101")])
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    assert companies(warehouse) == ["c101"]
    assert warehouse.scalar("SELECT COUNT(*) FROM analytics.company_activity_metrics") == 1


def test_field_case_13_one_company_per_id(warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    crm = FIELD / "13_case_space_nbsp_dupe_ids_crm_2025-11-23.csv"
    crm_result = load_crm_file(warehouse, tmp_path, D1, crm)
    assert (crm_result.lines_staged, crm_result.lines_rejected) == (3, 0)
    usage = load_usage_file(warehouse, FIELD / "13_usage" / "usage_2025-11-23.ndjson", D1)
    assert (usage.lines_staged, usage.lines_rejected) == (2, 0)
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    assert companies(warehouse) == ["c100", "c101"]
    names = dict(warehouse.query("SELECT company_id, company_name FROM dim.companies"))
    assert names == {"c100": "Alpha New", "c101": "Beta GmbH"}  # the later line wins
    assert validate(warehouse, D1).ok


def test_validation_flags_ids_staging_would_not_have_written(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    load_usage_lines(warehouse, tmp_path, D1, [usage_line("c101")])
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    for bad in ("C101", "c101\u00a0", "c\u200b101", "cafe\u0301"):
        warehouse.execute(
            "INSERT INTO analytics.company_activity_metrics SELECT * REPLACE (@id AS company_id) "
            "FROM analytics.company_activity_metrics WHERE company_id = 'c101'",
            {"id": bad},
        )
    check = check_canonical_keys(warehouse, [D1])[D1]
    assert not check.passed
    assert check.details == {"not_canonical": 4}


def test_rollback_retracts_companies_only_the_rolled_back_data_named(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    crm = tmp_path / "crm_companies_2025-11-23.csv"
    crm.write_text(
        "company_id,company_name,country,industry_tag,last_contact_at\n"
        "c100,Alpha,DE,saas,\n"
        "c300,Only in CRM,DE,saas,\n",
        encoding="utf-8",
    )
    load_crm_file(warehouse, tmp_path, D1, crm)
    load_usage_lines(warehouse, tmp_path, D1, [usage_line("c100"), usage_line("c101")])
    load_usage_lines(
        warehouse, tmp_path, D2, [usage_line("c100"), usage_line("c101"), usage_line("c200")]
    )
    model.merge(warehouse, D1, D2, "merge", RUN_TS)
    assert companies(warehouse) == ["c100", "c101", "c200", "c300"]

    result = rollback(warehouse, D2, "rb", RUN_TS, staging=True)
    # c200 came only with D2's usage; c101 is still named by D1's usage, c300 by the CRM.
    assert companies(warehouse) == ["c100", "c101", "c300"]
    assert (result.companies_retracted, result.retracted_analytics_rows) == (1, 0)
    assert "1 company(ies) no staging row names retracted" in result.summary()
    leftover = warehouse.query(
        "SELECT COUNT(*) FROM analytics.company_activity_metrics WHERE company_id = 'c200'"
    )
    assert leftover == [(0,)]
    # The date reloaded and merged again: the dimension and the model are whole again.
    later = RUN_TS + timedelta(hours=1)
    load_usage_lines(warehouse, tmp_path, D2, [usage_line("c100"), usage_line("c101")], later)
    model.merge(warehouse, D2, D2, "merge", later)
    assert validate(warehouse, D1).ok and validate(warehouse, D2).ok


def test_rollback_retracts_a_company_with_rows_on_later_dates(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    load_usage_lines(warehouse, tmp_path, D1, [usage_line("c100"), usage_line("phantom")])
    load_usage_lines(warehouse, tmp_path, D2, [usage_line("c100")])
    model.merge(warehouse, D1, D2, "merge", RUN_TS)
    # phantom has a grid row on D2 too, which D2's rollback-free days keep unless retracted.
    assert (
        warehouse.scalar(
            "SELECT COUNT(*) FROM analytics.company_activity_metrics WHERE company_id = 'phantom'"
        )
        == 2
    )
    result = rollback(warehouse, D1, "rb", RUN_TS, staging=True)
    assert (result.companies_retracted, result.retracted_analytics_rows) == (1, 1)
    assert companies(warehouse) == ["c100"]
    assert validate(warehouse, D2).ok


def test_rollback_without_staging_keeps_every_named_company(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    load_usage_lines(warehouse, tmp_path, D1, [usage_line("c100"), usage_line("c101")])
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    result = rollback(warehouse, D1, "rb", RUN_TS)
    assert result.companies_retracted == 0
    assert companies(warehouse) == ["c100", "c101"]
