"""Property tests: random histories merged in random orders equal the reference model.

Histories have gaps, duplicates (with and without ts), late-arriving days, failed load runs,
failed reloads, case- and space-variant ids, quarantined records and changing CRM snapshots.
The SQL runs on DuckDB; tests/reference_model.py computes the expected rows independently.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from company_activity.model import merge as model
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from company_activity.warehouse.migrations import migrate
from tests.reference_model import (
    CrmRecord,
    History,
    LoadRun,
    UsageRecord,
    differences,
    expected_dimension,
    expected_rows,
)
from tests.test_model import LOAD_TS, RUN_TS, actual_dimension, actual_rows, day, write_history

COMPANIES = ("acme", "beta", "c-3")
SPAN = 50  # days 0..49: longer than the 44-day window


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated warehouse file; each example works on a copy (migrating is slow)."""
    path = tmp_path_factory.mktemp("template") / "w.duckdb"
    with DuckDBWarehouse(path) as wh:
        migrate(wh, RUN_TS)
    return path


def fresh(template: Path) -> DuckDBWarehouse:
    copy = template.parent / f"{uuid.uuid4().hex}.duckdb"
    shutil.copy(template, copy)
    return DuckDBWarehouse(copy)


raw_ids = st.builds(
    lambda base, upper, left, right: (base.upper() if upper else base) + " " * right,
    st.sampled_from(COMPANIES),
    st.booleans(),
    st.just(""),
    st.integers(0, 1),
).flatmap(lambda raw: st.sampled_from([raw, " " + raw, raw.title()]))


@st.composite
def histories(draw: st.DrawFn) -> tuple[History, list[tuple[int, int]]]:
    """A history plus the merges to run, as (first day, last day) offsets, in run order."""
    h = History()
    loaded = sorted(draw(st.sets(st.integers(0, SPAN - 1), min_size=1, max_size=18)))
    for n in loaded:
        d = day(n)
        # sometimes a failed run before the successful one
        if draw(st.booleans()):
            h.loads.append(LoadRun("usage", d, "failed", LOAD_TS - timedelta(hours=1)))
        h.loads.append(LoadRun("usage", d, "succeeded", LOAD_TS))
        # sometimes a failed reload after it: it rolled back and changed nothing
        if draw(st.booleans()):
            h.loads.append(LoadRun("usage", d, "failed", LOAD_TS + timedelta(hours=1)))
        records = draw(
            st.lists(
                st.tuples(
                    raw_ids,
                    st.integers(0, 12),
                    st.integers(0, 40),
                    st.one_of(st.none(), st.integers(0, 3)),
                    st.sampled_from(["part-00000.ndjson", "part-00001.ndjson"]),
                ),
                max_size=5,
            )
        )
        for line, (raw, users, events, hour, file) in enumerate(records, start=1):
            ts = None if hour is None else datetime(2024, 1, 1) + timedelta(days=n, hours=hour)
            h.usage.append(UsageRecord(d, raw, users, events, ts, file, line))
        if draw(st.integers(0, 4)) == 0:
            h.rejected.append((d, draw(st.one_of(st.none(), raw_ids))))
        if draw(st.integers(0, 3)) == 0:
            h.loads.append(LoadRun("crm", d, "succeeded", LOAD_TS))
            for line, raw in enumerate(draw(st.lists(raw_ids, max_size=3)), start=2):
                contact = draw(st.one_of(st.none(), st.integers(-60, SPAN)))
                h.crm.append(
                    CrmRecord(
                        d,
                        raw,
                        draw(st.sampled_from(["Acme", "ACME Ltd", "Beta"])),
                        draw(st.sampled_from(["DE", "FR", None])),
                        "saas",
                        None if contact is None else datetime(2024, 3, 1, 9) + timedelta(contact),
                        line,
                    )
                )
    # A day whose only load run failed is never mergeable.
    if draw(st.integers(0, 3)) == 0:
        h.loads.append(LoadRun("usage", day(SPAN), "failed", LOAD_TS))
    # Merges: single days and short ranges of consecutive loaded days, shuffled, some rerun.
    merges = [(n, n) for n in loaded]
    if len(loaded) >= 2 and loaded[1] == loaded[0] + 1:
        merges.append((loaded[0], loaded[1]))
    merges = draw(st.permutations(merges))
    merges += draw(st.lists(st.sampled_from(merges), max_size=2))
    return h, merges


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=histories())
def test_any_merge_order_equals_the_reference(template: Path, case: tuple) -> None:  # type: ignore[type-arg]
    h, merges = case
    with fresh(template) as wh:
        write_history(wh, h)
        for n, (first, last) in enumerate(merges):
            model.merge(wh, day(first), day(last), f"m{n}", RUN_TS + timedelta(minutes=n))
            h.merged.update(day(k) for k in range(first, last + 1))
        assert actual_dimension(wh) == expected_dimension(h)
        problems = differences(expected_rows(h), actual_rows(wh))
        assert not problems, "\n".join(problems[:20])


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=histories(), seed=st.randoms(use_true_random=False))
def test_shuffled_merges_equal_one_chronological_pass(template: Path, case: tuple, seed) -> None:  # type: ignore[no-untyped-def, type-arg]
    """Tables after shuffled merges and reruns equal those of one pass in date order."""
    h, merges = case
    days = sorted({k for first, last in merges for k in range(first, last + 1)})
    with fresh(template) as chronological, fresh(template) as shuffled:
        for wh in (chronological, shuffled):
            write_history(wh, h)
        for n, k in enumerate(days):
            model.merge(chronological, day(k), day(k), f"c{n}", RUN_TS)
        order = list(merges)
        seed.shuffle(order)
        for n, (first, last) in enumerate(order + order[:1]):
            model.merge(shuffled, day(first), day(last), f"s{n}", RUN_TS)
        assert actual_rows(shuffled) == actual_rows(chronological)
        assert actual_dimension(shuffled) == actual_dimension(chronological)
