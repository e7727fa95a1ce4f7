"""An independent, pure-Python statement of the company-activity definitions (issue 3).

Written from the definitions alone for the tests: it shares no code or SQL with the product.
It works on plain records (raw ids, as the sources hold them) and computes, the slow and
obvious way, what one chronological pass over the loaded dates must leave in dim.companies
and analytics.company_activity_daily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any


def canonical(raw: str) -> str:
    return raw.strip().lower()


@dataclass(frozen=True)
class UsageRecord:
    day: date
    raw_id: str
    active_users: int
    events: int
    ts: datetime | None
    file: str
    line: int


@dataclass(frozen=True)
class CrmRecord:
    day: date
    raw_id: str
    name: str | None
    country: str | None
    industry: str | None
    last_contact_at: datetime | None
    line: int


@dataclass(frozen=True)
class LoadRun:
    source: str  # crm | usage
    day: date
    status: str
    started_at: datetime


@dataclass
class History:
    """Everything loaded, plus the dates merged (each merge covers dimension and analytics)."""

    usage: list[UsageRecord] = field(default_factory=list)
    crm: list[CrmRecord] = field(default_factory=list)
    rejected: list[tuple[date, str | None]] = field(default_factory=list)  # (day, raw id)
    loads: list[LoadRun] = field(default_factory=list)
    merged: set[date] = field(default_factory=set)

    def _in_effect(self, source: str, day: date) -> bool:
        """The latest run that changed staging (a failed one rolled back) succeeded."""
        runs = [
            r
            for r in self.loads
            if r.source == source and r.day == day and r.status in ("succeeded", "rolled_back")
        ]
        return bool(runs) and max(runs, key=lambda r: r.started_at).status == "succeeded"

    def usage_complete(self, day: date) -> bool:
        return self._in_effect("usage", day)

    def crm_loaded(self, day: date) -> bool:
        return self._in_effect("crm", day)


def round_half_away(value: Fraction, places: int) -> Decimal:
    """value rounded half away from zero to `places` decimals, exactly (no float, no context).

    What SQL Server's CAST to DECIMAL(p, places) does to an exact value, and what every
    metric must equal (docs/dialect-contract.md, rule 26).
    """
    scaled = abs(value) * 10**places
    units = (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)
    return Decimal(-units if value < 0 else units).scaleb(-places)


_q = round_half_away


def expected_dimension(h: History) -> dict[str, dict[str, Any]]:
    """dim.companies after merging every date in h.merged, in any order."""
    dims: dict[str, dict[str, Any]] = {}
    crm_days = sorted(d for d in h.merged if h.crm_loaded(d))
    for day in crm_days:
        # within one snapshot file the later line wins
        for rec in sorted((r for r in h.crm if r.day == day), key=lambda r: r.line):
            cid = canonical(rec.raw_id)
            entry = dims.setdefault(cid, {"first_seen_date": day})
            entry.update(
                company_name=rec.name,
                country=rec.country,
                industry_tag=rec.industry,
                last_contact_at=rec.last_contact_at,
                crm_snapshot_date=day,
            )
            entry["first_seen_date"] = min(entry["first_seen_date"], day)
    for rec in h.usage:
        if rec.day in h.merged and h.usage_complete(rec.day):
            cid = canonical(rec.raw_id)
            entry = dims.setdefault(
                cid,
                {
                    "first_seen_date": rec.day,
                    "company_name": None,
                    "country": None,
                    "industry_tag": None,
                    "last_contact_at": None,
                    "crm_snapshot_date": None,
                },
            )
            entry["first_seen_date"] = min(entry["first_seen_date"], rec.day)
    return dims


def _daily(h: History) -> dict[tuple[str, date], tuple[int, int, int]]:
    """(company, day) -> (users, events, record count), latest ts winning, for loaded days."""
    groups: dict[tuple[str, date], list[UsageRecord]] = {}
    for rec in h.usage:
        if h.usage_complete(rec.day):
            groups.setdefault((canonical(rec.raw_id), rec.day), []).append(rec)
    out = {}
    for key, recs in groups.items():

        def rank(r: UsageRecord) -> tuple[int, datetime, str, int]:
            return (r.ts is not None, r.ts or datetime.min, r.file, r.line)

        winner = max(recs, key=rank)
        out[key] = (winner.active_users, winner.events, len(recs))
    return out


def expected_rows(h: History) -> dict[tuple[str, date], dict[str, Any]]:
    """analytics.company_activity_daily, keyed by (company_id, activity_date)."""
    dims = expected_dimension(h)
    daily = _daily(h)
    rejected = {(canonical(raw), d) for d, raw in h.rejected if raw is not None}
    rows: dict[tuple[str, date], dict[str, Any]] = {}
    for day in sorted(d for d in h.merged if h.usage_complete(d)):
        for cid, dim in dims.items():
            if dim["first_seen_date"] > day:
                continue
            rows[(cid, day)] = _row(h, cid, day, dim, daily, rejected)
    return rows


def _row(
    h: History,
    cid: str,
    day: date,
    dim: dict[str, Any],
    daily: dict[tuple[str, date], tuple[int, int, int]],
    rejected: set[tuple[str, date]],
) -> dict[str, Any]:
    def u(offset: int) -> int:
        return daily.get((cid, day - timedelta(days=offset)), (0, 0, 0))[0]

    def e(offset: int) -> int:
        return daily.get((cid, day - timedelta(days=offset)), (0, 0, 0))[1]

    def active(offset: int) -> bool:
        return u(offset) > 0 or e(offset) > 0

    users_7 = sum(u(i) for i in range(7))
    users_prev_7 = sum(u(i) for i in range(7, 14))
    users_30 = sum(u(i) for i in range(30))
    events_14 = sum(e(i) for i in range(14))
    events_older = sum(e(i) for i in range(14, 44))
    active_days = sum(1 for i in range(30) if active(i))

    active_history = [
        d for (c, d), (uu, ee, _n) in daily.items() if c == cid and d <= day and (uu > 0 or ee > 0)
    ]
    last_activity = max(active_history) if active_history else None

    contact = dim["last_contact_at"]
    if contact is None or contact.date() > day:
        days_since_contact = None
    else:
        days_since_contact = (day - contact.date()).days

    consistency = Fraction(active_days, 30)
    if users_30 == 0:
        trend = Fraction(0)
    else:
        trend = min(Fraction(1), Fraction(users_7, 7) / Fraction(users_30, 30))
    score = 100 * (Fraction(1, 2) * consistency + Fraction(1, 2) * trend)

    reasons = []
    if events_14 == 0 and events_older > 0:
        reasons.append("inactive_14d")
    if users_prev_7 >= 7 and users_7 < Fraction(1, 2) * users_prev_7:
        reasons.append("usage_drop")
    if days_since_contact is not None and days_since_contact > 30 and active_days <= 7:
        reasons.append("no_recent_contact")

    flags = []
    if dim["crm_snapshot_date"] is None:
        flags.append("no_crm_record")
    if any(not h.usage_complete(day - timedelta(days=i)) for i in range(30)):
        flags.append("partial_window")
    if daily.get((cid, day), (0, 0, 0))[2] > 1:
        flags.append("duplicate_source_records")
    if (cid, day) in rejected:
        flags.append("rejected_source_records")

    return {
        "company_name": dim["company_name"],
        "country": dim["country"],
        "industry_tag": dim["industry_tag"],
        "last_contact_at": contact,
        "active_users": u(0),
        "events": e(0),
        "rolling_7d_active_users": users_7,
        "rolling_30d_events": sum(e(i) for i in range(30)),
        "active_days_30d": active_days,
        "activity_consistency_30d": _q(consistency, 4),
        "peak_active_users_30d": max(u(i) for i in range(30)),
        "usage_density": None if u(0) == 0 else _q(Fraction(e(0), u(0)), 4),
        "active_users_dod_pct": None if u(1) == 0 else _q(Fraction(u(0) - u(1), u(1)), 4),
        "active_users_wow_pct": (
            None if users_prev_7 == 0 else _q(Fraction(users_7 - users_prev_7, users_prev_7), 4)
        ),
        "last_activity_date": last_activity,
        "days_since_last_activity": None if last_activity is None else (day - last_activity).days,
        "days_since_last_contact": days_since_contact,
        "engagement_score": _q(score, 1),
        "is_churn_risk": 1 if reasons else 0,
        "churn_risk_reasons": ",".join(reasons) or None,
        "data_quality_flag": ",".join(sorted(flags)) or "ok",
    }


def differences(
    expected: dict[tuple[str, date], dict[str, Any]],
    actual: dict[tuple[str, date], dict[str, Any]],
) -> list[str]:
    """Human-readable differences, every value exact (decimals too: rule 26)."""
    problems = []
    for key in sorted(set(expected) - set(actual)):
        problems.append(f"missing row {key}")
    for key in sorted(set(actual) - set(expected)):
        problems.append(f"unexpected row {key}")
    for key in sorted(set(expected) & set(actual)):
        for column, want in expected[key].items():
            got = actual[key][column]
            if got != want:
                problems.append(f"{key} {column}: expected {want!r}, got {got!r}")
    return problems
