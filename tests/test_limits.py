"""What the model can hold (issues 14 and 16): measure ranges and string limits from schema.py.

A value outside a measure's range is quarantined (`events = 1e14` used to be staged and then
fail every later merge on a numeric overflow); the extreme accepted values merge without error
(a hypothesis property on DuckDB files). Strings are checked against their column's real limit
(dialect contract, rule 27): UTF-8 bytes for VARCHAR, UTF-16 code units for NVARCHAR.
"""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from company_activity.errors import DataError
from company_activity.model import merge as model
from company_activity.staging import load_usage_files
from company_activity.staging.folder import dated_files
from company_activity.staging.limits import (
    ACTIVE_USERS,
    EVENTS,
    MEASURES,
    fits,
    integer_max,
    text_limit,
)
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from company_activity.warehouse.schema import CRM_COMPANIES, PRODUCT_USAGE, QUARANTINE
from company_activity.warehouse.sql_files import sql_dir
from tests.reference_model import History, LoadRun, UsageRecord
from tests.test_company_ids import (
    D1,
    RUN_TS,
    load_crm_file,
    load_usage_lines,
    reasons,
    usage_line,
)
from tests.test_model import LOAD_TS, write_history

USERS_MAX = 2**31 - 1
EVENTS_MAX = 10**14 - 1


def test_ranges_follow_from_the_declared_types() -> None:
    # active_users: an INT column is the tightest place; events: usage_density, a
    # DECIMAL(18,4) holding events / active_users, holds at most 10^14 - 1 for one user.
    assert ACTIVE_USERS.maximum == USERS_MAX
    assert EVENTS.maximum == EVENTS_MAX
    assert EVENTS.limited_by.sql_type == "DECIMAL(18,4)"
    assert integer_max("BIGINT") == 2**63 - 1
    assert integer_max("DECIMAL(5,1)") == 9999


def _frames(sql: str, column: str) -> list[int]:
    """Widths of the SUM window frames over g.<column> in populate_analytics.sql."""
    widths = []
    pattern = rf"SUM\(CAST\(g\.{column} AS \w+\)\)\s*OVER\s*\((.*?)\)\s*AS"
    for frame in re.findall(pattern, sql, flags=re.S):
        match = re.search(
            r"ROWS BETWEEN (\d+) PRECEDING AND (?:(\d+) PRECEDING|CURRENT ROW)", frame
        )
        assert match, frame
        widths.append(int(match.group(1)) - int(match.group(2) or 0) + 1)
    return widths


@pytest.mark.parametrize("measure", MEASURES, ids=lambda m: m.name)
def test_declared_multiples_cover_the_windows_of_the_model(measure: object) -> None:
    sql = (sql_dir() / "populate_analytics.sql").read_text(encoding="utf-8")
    widths = _frames(sql, measure.name)  # type: ignore[attr-defined]
    assert widths, "the model sums this measure somewhere"
    summed = [h.multiple for h in measure.holders if h.sql_type == "BIGINT"]  # type: ignore[attr-defined]
    assert max(widths) <= max(summed)


def test_values_beyond_the_model_are_quarantined(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    lines = [
        usage_line("c1", USERS_MAX, EVENTS_MAX),
        usage_line("c2", USERS_MAX + 1, 1),
        usage_line("c3", 1, EVENTS_MAX + 1),  # events = 1e14, the case
    ]
    result = load_usage_lines(warehouse, tmp_path, D1, lines)
    assert (result.lines_staged, result.lines_rejected) == (1, 2)
    assert reasons(warehouse, "usage") == {
        2: (f"active_users is out of range (at most {USERS_MAX}), got {USERS_MAX + 1}", "c2"),
        3: (f"events is out of range (at most {EVENTS_MAX}), got {EVENTS_MAX + 1}", "c3"),
    }
    # The quarantined line blocks nothing: the date and the next merge go through.
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    rows = warehouse.query(
        "SELECT company_id, events, usage_density FROM analytics.company_activity_metrics "
        "ORDER BY company_id"
    )
    assert rows[0][:2] == ("c1", EVENTS_MAX)


# --- the extreme accepted values merge without error (DuckDB) --------------------------------

SPAN = 75  # days: past the 44-day lookback, so full windows of extremes are summed


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "w.duckdb"
    with DuckDBWarehouse(path) as wh:
        migrate(wh, RUN_TS)
    return path


def extreme(top: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([0, 1, top, top - 1]), st.integers(0, top))


@st.composite
def days_of_usage(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """(day, active_users, events) for one company, mostly extreme values."""
    mostly_max = draw(st.booleans())
    out = []
    for n in range(SPAN):
        if mostly_max and draw(st.integers(0, 9)) > 0:
            out.append((n, USERS_MAX, EVENTS_MAX))
        elif draw(st.integers(0, 4)) > 0:
            out.append((n, draw(extreme(USERS_MAX)), draw(extreme(EVENTS_MAX))))
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(usage=st.lists(days_of_usage(), min_size=1, max_size=3))
def test_extreme_accepted_values_merge_without_error(
    template: Path, usage: list[list[tuple[int, int, int]]]
) -> None:
    start = date(2024, 1, 1)
    h = History()
    for company, records in enumerate(usage):
        for n, users, events in records:
            h.usage.append(
                UsageRecord(start + timedelta(days=n), f"c{company}", users, events, None, "p", 1)
            )
    h.loads = [
        LoadRun("usage", start + timedelta(days=n), "succeeded", LOAD_TS) for n in range(SPAN)
    ]
    copy = template.parent / f"{uuid.uuid4().hex}.duckdb"
    shutil.copy(template, copy)
    with DuckDBWarehouse(copy) as wh:
        write_history(wh, h)
        # Twice: a first merge of the range, then a rerun over the same extremes.
        model.merge(wh, start, start + timedelta(days=SPAN - 1), "merge", RUN_TS)
        model.merge(
            wh, start + timedelta(days=40), start + timedelta(days=SPAN - 1), "again", RUN_TS
        )
        got = {
            (company, day): (total, users_7d)
            for company, day, total, users_7d in wh.query(
                "SELECT company_id, activity_date, rolling_30d_events, rolling_7d_active_users "
                "FROM analytics.company_activity_metrics"
            )
        }
    for company, records in enumerate(usage):
        by_day = {start + timedelta(days=n): (u, e) for n, u, e in records}
        for (cid, day), (total, users_7d) in got.items():
            if cid != f"c{company}":
                continue
            window = [day - timedelta(days=k) for k in range(30)]
            assert total == sum(by_day.get(d, (0, 0))[1] for d in window)
            week = [day - timedelta(days=k) for k in range(7)]
            assert users_7d == sum(by_day.get(d, (0, 0))[0] for d in week)


# --- strings: the column's real limit (rule 27) ----------------------------------------------


def test_text_limits_count_what_the_column_counts() -> None:
    key = text_limit(PRODUCT_USAGE, "company_id")
    assert (key.size, key.unit) == (100, "bytes")  # VARCHAR(100) under a UTF-8 collation
    raw = text_limit(PRODUCT_USAGE, "company_id_raw")
    assert (raw.size, raw.unit) == (200, "utf16")
    assert text_limit(QUARANTINE, "company_id") == key
    assert fits(key, "я" * 50) and not fits(key, "я" * 51)
    assert fits(raw, "😀" * 100) and not fits(raw, "😀" * 101)  # two UTF-16 units each


def test_cyrillic_id_of_120_bytes_is_quarantined(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    cyrillic_60, cyrillic_50 = "д" * 60, "д" * 50  # 120 and 100 bytes of UTF-8
    lines = [usage_line(cyrillic_60), usage_line(cyrillic_50), usage_line("x" * 101)]
    result = load_usage_lines(warehouse, tmp_path, D1, lines)
    assert (result.lines_staged, result.lines_rejected) == (1, 2)
    too_long = ("company_id is longer than 100 bytes in UTF-8", None)
    assert reasons(warehouse, "usage") == {1: too_long, 3: too_long}
    assert warehouse.query("SELECT company_id FROM stg.product_usage") == [(cyrillic_50,)]


def test_raw_id_counts_utf16_units(warehouse: DuckDBWarehouse, tmp_path: Path) -> None:
    # Padding is trimmed from the canonical id but kept in company_id_raw, NVARCHAR(200).
    fits_raw = "\u3000" * 197 + "c1" + "\u3000"
    too_long = "\u3000" * 198 + "c1" + "\u3000"
    result = load_usage_lines(warehouse, tmp_path, D1, [usage_line(fits_raw), usage_line(too_long)])
    assert (result.lines_staged, result.lines_rejected) == (1, 1)
    assert reasons(warehouse, "usage") == {
        2: ("company_id_raw is longer than 200 characters", "c1")
    }


def test_crm_ids_and_attributes_fit_their_columns(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    assert text_limit(CRM_COMPANIES, "country").unit == "utf16"
    crm = tmp_path / "crm_companies_2025-11-23.csv"
    crm.write_text(
        "company_id,company_name,country,industry_tag,last_contact_at\n"
        f"{'д' * 60},Acme,DE,saas,\n"
        f"{'д' * 50},Acme,DE,saas,\n"
        f"c3,Acme,{'😀' * 51},saas,\n"  # 102 UTF-16 units in NVARCHAR(100)
        f"c4,Acme,{'é' * 100},{'x' * 100},\n"  # exactly 100 each
        f"c5,{'名' * 401},DE,saas,\n",
        encoding="utf-8",
    )
    result = load_crm_file(warehouse, tmp_path, D1, crm)
    assert (result.lines_staged, result.lines_rejected) == (2, 3)
    assert reasons(warehouse, "crm") == {
        2: ("company_id is longer than 100 bytes in UTF-8", None),
        4: ("country is longer than 100 characters", "c3"),
        6: ("company_name is longer than 400 characters", "c5"),
    }


def test_a_file_name_its_column_cannot_hold_fails_the_load(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    folder = tmp_path / ("d" * 200) / ("e" * 200)
    folder.mkdir(parents=True)
    (folder / "usage_2025-11-23.ndjson").write_text(usage_line("c1") + "\n", encoding="utf-8")
    ((day, files),) = dated_files(tmp_path).items()
    with pytest.raises(DataError, match="longer than the 400 characters src_file_name holds"):
        load_usage_files(warehouse, day, files, run_id="load", clock=lambda: RUN_TS)
