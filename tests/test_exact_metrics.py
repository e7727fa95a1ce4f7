"""Every decimal metric equals its exact value rounded half away from zero (contract rule 26).

The expressions are taken from sql/populate_analytics.sql itself (its outer SELECT and the
middle query that forms the numerators and denominators), transpiled as the runner does, and
evaluated by DuckDB over many input rows at once; fractions.Fraction gives the expected value.
Inputs cover the whole accepted range (staging.limits, from the column types: active_users an
INT, events at most what usage_density's DECIMAL(18,4) holds), ties at the last digit, and the
extremes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from company_activity.staging.limits import ACTIVE_USERS, EVENTS
from company_activity.warehouse.schema import COMPANY_ACTIVITY_METRICS, PRODUCT_USAGE
from company_activity.warehouse.tsql import transpile_batch
from tests.reference_model import round_half_away

SQL = Path(__file__).resolve().parents[1] / "sql" / "populate_analytics.sql"


def _type_max(sql_type: str) -> int:
    """The largest integer a declared INT or DECIMAL(p,s) column holds."""
    if sql_type == "INT":
        return 2**31 - 1
    precision, scale = (int(x) for x in sql_type[len("DECIMAL(") : -1].split(","))
    return int(10 ** (precision - scale)) - 1


# The accepted ranges, as staging enforces them (derived from schema.py): a day's active_users
# is what its INT columns hold; a day's events what usage_density (events / active_users, at
# least one user) holds in its DECIMAL(18,4). The SQL's comments give its bounds from these.
U = ACTIVE_USERS.maximum
E = EVENTS.maximum


def test_the_accepted_ranges_are_the_ones_the_sql_is_exact_for() -> None:
    assert U == _type_max(PRODUCT_USAGE.column("active_users").sql_type) == 2**31 - 1
    assert E == _type_max(COMPANY_ACTIVITY_METRICS.column("usage_density").sql_type) == 10**14 - 1


# The window columns the middle query reads from its windows (alias w), with their types.
INPUTS = {
    "active_users": "INTEGER",
    "events": "BIGINT",
    "users_previous_day": "INTEGER",
    # DuckDB's SUM over INT and BIGINT is a HUGEINT
    "users_7d": "HUGEINT",
    "users_previous_7d": "HUGEINT",
    "users_30d": "HUGEINT",
    "active_days_30d": "HUGEINT",
}
METRICS = (
    "activity_consistency_30d",
    "usage_density",
    "active_users_dod_pct",
    "active_users_wow_pct",
    "engagement_score",
)


@dataclass(frozen=True)
class Day:
    """One company-day's window values, as the grid's windows give them."""

    active_users: int
    events: int
    users_previous_day: int
    users_7d: int
    users_previous_7d: int
    users_30d: int
    active_days_30d: int


def expected(d: Day) -> dict[str, Decimal | None]:
    """The definitions (docs/company_activity_design.md), exactly."""
    trend = (
        Fraction(0)
        if d.users_30d == 0
        else min(Fraction(1), Fraction(30 * d.users_7d, 7 * d.users_30d))
    )
    score = 100 * (Fraction(d.active_days_30d, 60) + trend / 2)

    def ratio(n: int, den: int) -> Decimal | None:
        return None if den == 0 else round_half_away(Fraction(n, den), 4)

    return {
        "activity_consistency_30d": round_half_away(Fraction(d.active_days_30d, 30), 4),
        "usage_density": ratio(d.events, d.active_users),
        "active_users_dod_pct": ratio(d.active_users - d.users_previous_day, d.users_previous_day),
        "active_users_wow_pct": ratio(d.users_7d - d.users_previous_7d, d.users_previous_7d),
        "engagement_score": round_half_away(score, 1),
    }


def _projections(select: exp.Select) -> dict[str, exp.Expression]:
    return {p.alias_or_name: p for p in select.expressions}


def _metric_query() -> str:
    """The file's metric expressions over a table `days` of window values, for DuckDB."""
    merge = sqlglot.parse_one(SQL.read_text(encoding="utf-8"), read="tsql")
    outer = merge.args["using"].this
    middle_table = next(
        s for s in outer.find_all(exp.Subquery) if s.alias == "m" and s.parent is not None
    )
    middle = _projections(middle_table.this)
    outer_projections = _projections(outer)
    needed = sorted(
        {c.name for name in METRICS for c in outer_projections[name].find_all(exp.Column)}
    )
    inner = ", ".join(middle[name].sql("tsql") for name in needed)
    metrics = ", ".join(outer_projections[name].sql("tsql") for name in METRICS)
    tsql = f"SELECT w.row_id, {metrics} FROM (SELECT w.row_id, {inner} FROM days AS w) AS m"
    # the outer SELECT names its source m; keep the row id through it
    tsql = tsql.replace("SELECT w.row_id, ", "SELECT m.row_id, ", 1)
    (statement,) = transpile_batch(tsql)
    return statement.sql


QUERY = _metric_query()


def evaluate(batch: list[Day]) -> list[dict[str, Decimal | None]]:
    con = duckdb.connect()
    columns = ", ".join(f"{name} {kind}" for name, kind in INPUTS.items())
    con.execute(f"CREATE TABLE days (row_id INTEGER, {columns})")
    con.executemany(
        f"INSERT INTO days VALUES (?, {', '.join('?' for _ in INPUTS)})",
        [(i, *(getattr(d, name) for name in INPUTS)) for i, d in enumerate(batch)],
    )
    rows = con.execute(f"SELECT * FROM ({QUERY}) AS q ORDER BY 1").fetchall()
    return [dict(zip(METRICS, row[1:], strict=True)) for row in rows]


def check(batch: list[Day]) -> None:
    for d, got in zip(batch, evaluate(batch), strict=True):
        assert got == expected(d), d


# --- inputs ----------------------------------------------------------------------------------


def _edges(top: int) -> st.SearchStrategy[int]:
    """Anywhere in 0..top, with the edges and small values often."""
    return st.one_of(
        st.integers(0, top),
        st.sampled_from([0, 1, 2, 3, 7, 30, top - 1, top]),
        st.integers(0, 1000),
    )


@st.composite
def days(draw: st.DrawFn) -> Day:
    users = [draw(_edges(U)) for _ in range(3)]
    users_7d = draw(_edges(7 * U))
    return Day(
        active_users=users[0],
        events=draw(_edges(E)),
        users_previous_day=users[1],
        users_7d=users_7d,
        users_previous_7d=draw(_edges(7 * U)),
        users_30d=users_7d + draw(_edges(23 * U)),
        active_days_30d=draw(st.integers(0, 30)),
    )


@st.composite
def ratio_ties(draw: st.DrawFn, top: int) -> tuple[int, int]:
    """(n, d), d <= top, with n / d exactly halfway between two 4-decimal values.

    n / d * 10^4 is half an odd integer iff d = 2^5 5^(4-t) m and n = j m with j odd, 5^t | j.
    """
    t = draw(st.integers(0, 4))
    m = draw(st.integers(1, top // (32 * 5 ** (4 - t))))
    j = 2 * draw(st.integers(0, min(E, top) // m // 2 - 1)) + 1
    j *= 5**t if j * 5**t * m <= min(E, top) else 1
    return j * m, 32 * 5 ** (4 - t) * m


@st.composite
def density_ties(draw: st.DrawFn) -> Day:
    events, users = draw(ratio_ties(U))
    return replace(draw(days()), events=events, active_users=users)


@st.composite
def change_ties(draw: st.DrawFn) -> Day:
    """Day-over-day and week-over-week changes on ties, up or down."""
    change, base = draw(ratio_ties(U).filter(lambda nd: nd[0] <= nd[1]))
    week_change, week_base = draw(ratio_ties(7 * U).filter(lambda nd: nd[0] <= nd[1]))
    up = draw(st.booleans()) and base + change <= U
    week_up = draw(st.booleans()) and week_base + week_change <= 7 * U
    users_7d = week_base + week_change if week_up else week_base - week_change
    return replace(
        draw(days()),
        active_users=base + change if up else base - change,
        users_previous_day=base,
        users_7d=users_7d,
        users_previous_7d=week_base,
        users_30d=users_7d + draw(_edges(23 * U)),
    )


@st.composite
def engagement_ties(draw: st.DrawFn) -> Day:
    """Scores exactly halfway between two tenths.

    With a = active_days_30d, score = (35 a u30 + 4500 u7) / (21 u30) when 30 u7 < 7 u30; it
    is (2i + 1) / 20 when u30 = 90000 m and u7 = m (21 j - 700 a), j = 2i + 1 odd.
    """
    a = draw(st.integers(0, 30))
    m = draw(st.integers(1, 30 * U // 90000))
    # 21 j >= 700 a (u7 >= 0) and 21 j - 700 a < 21000 (below the trend's cap of 1)
    low, high = -(-700 * a // 21), (21000 + 700 * a - 1) // 21
    j = draw(st.integers(low, high).filter(lambda j: j % 2 == 1))
    return replace(
        draw(days()), active_days_30d=a, users_30d=90000 * m, users_7d=m * (21 * j - 700 * a)
    )


# --- the tests -----------------------------------------------------------------------------

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.lists(days(), min_size=1, max_size=60))
def test_every_metric_is_exact_over_the_accepted_range(batch: list[Day]) -> None:
    check(batch)


TIES = st.one_of(density_ties(), change_ties(), engagement_ties())


@PROPERTY
@given(st.lists(TIES, min_size=1, max_size=60))
def test_ties_round_half_away_from_zero(batch: list[Day]) -> None:
    check(batch)


def test_the_extremes() -> None:
    """Every corner of the accepted ranges, including the largest values each column holds."""
    corners = [0, 1, U - 1, U]
    batch = [
        Day(u, e, prev, u7, p7, u7 + rest, a)
        for u in corners
        for e in (0, 1, E - 1, E)
        for prev in corners
        for u7 in (0, 1, 7 * U)
        for p7 in (0, 1, 7 * U)
        for rest in (0, 23 * U)
        for a in (0, 1, 29, 30)
    ]
    check(batch)
    assert {"usage_density": Decimal("99999999999999.0000")}.items() <= evaluate(
        [Day(1, E, 1, 1, 1, 1, 1)]
    )[0].items()


@pytest.mark.parametrize(
    ("day", "metric", "value"),
    [
        # issue 16: 3 events over 20,000 users is 0.00015, a tie: half away from zero
        (Day(20000, 3, 1, 1, 1, 1, 1), "usage_density", Decimal("0.0002")),
        # issue 16: 66.849999417..., not a tie; SQL Server's old expression trimmed its
        # intermediate quotients to 6 decimals (36.666667 + 30.183333 = 66.850000) and gave 66.9
        (Day(1, 0, 1, 377002, 1, 2676515, 22), "engagement_score", Decimal("66.8")),
        (Day(1, 0, 1, 21, 1, 90000, 0), "engagement_score", Decimal("0.1")),  # 0.05
        (Day(3, 0, 40000, 1, 1, 1, 1), "active_users_dod_pct", Decimal("-0.9999")),  # -0.999925
        (Day(1, 0, 1, 1, 20000, 1, 1), "active_users_wow_pct", Decimal("-1.0000")),  # -0.99995
        (Day(1, 0, 1, 20000 - 3, 20000, 20000, 1), "active_users_wow_pct", Decimal("-0.0002")),
        (Day(1, 0, 1, 1, 1, 1, 1), "activity_consistency_30d", Decimal("0.0333")),
        (Day(1, 0, 1, 1, 1, 1, 2), "activity_consistency_30d", Decimal("0.0667")),
    ],
)
def test_the_issue_cases(day: Day, metric: str, value: Decimal) -> None:
    assert evaluate([day])[0][metric] == value
    assert expected(day)[metric] == value
