"""The report over a range whose dates are not all merged (real DuckDB file).

A report used to count rejects only on dates that had analytics rows, and said nothing when
some or all of the range's dates had none: a mistyped year gave an empty report that looked
like a quiet period.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from company_activity.model import merge as model
from company_activity.pipeline.report import build_report, render_text, write_markdown
from company_activity.staging import load_usage_files
from company_activity.staging.usage import local_file
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

D1, D2, D3 = date(2025, 11, 23), date(2025, 11, 24), date(2025, 11, 25)
RUN_TS = datetime(2025, 11, 26, 6, 0)


def load(wh: DuckDBWarehouse, tmp_path: Path, day: date, lines: list[str]) -> None:
    path = tmp_path / f"usage_{day}.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_usage_files(wh, day, [local_file(path, path.name)], run_id="load", clock=lambda: RUN_TS)


def good(company: str) -> str:
    return json.dumps({"company_id": company, "active_users": 2, "events": 5})


def test_report_names_unmerged_dates_and_counts_their_rejects(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    load(warehouse, tmp_path, D1, [good("c1"), "not json"])
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    load(warehouse, tmp_path, D2, [good("c1"), "{}", ""])  # loaded, not merged
    report = build_report(warehouse, D1, D3)
    assert report.rejected == 3
    assert report.unmerged == (D2, D3)
    text = render_text(report)
    assert "Rejected input rows in the range: 3 " in text
    warning = (
        "Warning: 2 of 3 dates have no analytics rows (2025-11-24, 2025-11-25); they are not "
        "loaded and merged yet (`company-activity status`, docs/runbook.md)"
    )
    assert warning in text
    assert warning in write_markdown(report, tmp_path / "r").read_text(encoding="utf-8")


def test_report_on_a_range_with_no_analytics_rows_says_so(
    warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    load(warehouse, tmp_path, D1, [good("c1")])
    model.merge(warehouse, D1, D1, "merge", RUN_TS)
    report = build_report(warehouse, date(2015, 11, 23), date(2015, 11, 30))
    assert "Warning: no date in the range has analytics rows" in render_text(report)
    full = build_report(warehouse, D1, D1)
    assert (full.unmerged, full.warning()) == ((), None)
    assert "Warning" not in render_text(full)
