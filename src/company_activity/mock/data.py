"""Deterministic synthetic product usage and CRM snapshots, for demos, tests and benchmarks.

Everything is a pure function of (seed, n_companies, date): any date can be regenerated alone,
in any order, on any machine. Companies keep their identity when n_companies grows (company k
is the same whatever the total). The population (shares are approximate):

- steady (60%): flat usage with weekday seasonality and day-to-day noise;
- growing (12%): usage grows exponentially, 0.2-0.8% a day, around the timeline's anchor;
- decaying (12%): usage declines linearly over 2-6 months, then stops (churn);
- silent (6%): normal usage until a date, then nothing at all;
- new (10%): first usage on a weekday of some week over two years, ramping up over 4 weeks,
  so every week brings a few new companies.

Weekdays carry more usage than weekends (WEEKDAY_FACTOR); a company with no active user on a
day has no record that day. Launches, churn and silences fall
within two years from EPOCH; before EPOCH only the growing companies' trend differs.

Per-record cost is a few random draws and one f-string (no JSON encoder): a benchmark can drive
100,000 companies x 365 days through it. Noise is drawn from one random stream per
(seed, date, block of BLOCK_SIZE companies), so any page of companies is cheap to regenerate.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from company_activity.ingest import rawzone
from company_activity.storage.base import BlobStore

EPOCH = date(2025, 1, 6)  # a Monday: the anchor of trends, launches and churn
HORIZON_DAYS = 728  # launches, churn and silences fall within two years from EPOCH
BLOCK_SIZE = 1024
DRAWS_PER_RECORD = 3
# Monday .. Sunday
WEEKDAY_FACTOR = (1.0, 1.08, 1.1, 1.05, 0.9, 0.35, 0.25)
NEW_RAMP_DAYS = 28
CRM_LEAD_DAYS = 7  # a new company is in the CRM a week before its first usage

STEADY, GROWING, DECAYING, SILENT, NEW = "steady", "growing", "decaying", "silent", "new"
KIND_SHARES = ((STEADY, 0.60), (GROWING, 0.12), (DECAYING, 0.12), (SILENT, 0.06), (NEW, 0.10))

CRM_HEADER = ("company_id", "company_name", "country", "industry_tag", "last_contact_at")

_EPOCH_ORDINAL = EPOCH.toordinal()
_BEGINNING = date.min.toordinal()
_FOREVER = date.max.toordinal()
_GROWTH_FLOOR, _GROWTH_CAP = 0.2, 6.0
_DECAY_FLOOR = 0.05
_FIRST_ACTIVE_SECOND, _ACTIVE_SECONDS = 6 * 3600, 16 * 3600  # records stamped 06:00-22:00

_ADJECTIVES = (
    "Northern",
    "Blue",
    "Bright",
    "Silver",
    "Rapid",
    "Quiet",
    "Golden",
    "Open",
    "Clear",
    "Prime",
    "Green",
    "Bold",
    "Lucky",
    "Solid",
    "True",
    "Urban",
    "Swift",
    "Vivid",
    "Noble",
    "Hidden",
)
_NOUNS = (
    "Harbor",
    "Peak",
    "River",
    "Forge",
    "Field",
    "Signal",
    "Orbit",
    "Bridge",
    "Canyon",
    "Lantern",
    "Works",
    "Systems",
    "Metrics",
    "Cloud",
    "Labs",
    "Dynamics",
    "Partners",
    "Logistics",
)
_SUFFIXES = ("Inc", "Ltd", "GmbH", "LLC", "SA", "BV", "AB", "Co")
_COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "NL", "SE", "ES", "IT", "CA", "AU", "IN", "BR")
_INDUSTRIES = ("saas", "fintech", "retail", "healthcare", "logistics", "education", "media")


@dataclass(frozen=True, slots=True)
class Company:
    """One synthetic company's fixed traits."""

    index: int
    company_id: str
    kind: str
    base_users: float
    events_per_user: float
    first_day: int  # ordinal of the first day with usage
    last_day: int  # ordinal of the last day with usage
    rate: float  # growing: growth per day; decaying: length of the decline in days
    name: str
    country: str
    industry_tag: str
    contact_every: int  # days between CRM contacts
    contact_phase: int
    line_prefix: str = field(repr=False, default="")  # the record's text up to active_users

    @property
    def first_date(self) -> date | None:
        return None if self.first_day == _BEGINNING else date.fromordinal(self.first_day)

    @property
    def last_date(self) -> date | None:
        return None if self.last_day == _FOREVER else date.fromordinal(self.last_day)


def company_id(index: int) -> str:
    """The canonical id of the index-th company (0-based): c000001, c000002, ..."""
    return f"c{index + 1:06d}"


def companies(seed: int, n_companies: int) -> tuple[Company, ...]:
    """The population: n_companies companies, the same ones for every date."""
    return _companies(seed, max(0, n_companies))


@lru_cache(maxsize=8)
def _companies(seed: int, n_companies: int) -> tuple[Company, ...]:
    result: list[Company] = []
    for block_start in range(0, n_companies, BLOCK_SIZE):
        rng = random.Random(f"{seed}:companies:{block_start // BLOCK_SIZE}")
        for index in range(block_start, min(n_companies, block_start + BLOCK_SIZE)):
            result.append(_company(rng, index))
    return tuple(result)


def _company(rng: random.Random, index: int) -> Company:
    pick = rng.random()
    kind = KIND_SHARES[-1][0]
    for name, share in KIND_SHARES:
        if pick < share:
            kind = name
            break
        pick -= share
    base_users = min(5000.0, 1.0 + math.exp(rng.gauss(2.4, 1.0)))
    events_per_user = rng.uniform(5.0, 40.0)
    first_day, last_day, rate = _BEGINNING, _FOREVER, 0.0
    # Draw every trait for every company so that the stream stays aligned whatever the kind.
    launch = _EPOCH_ORDINAL + 7 * rng.randrange(HORIZON_DAYS // 7) + rng.randrange(5)
    stop = _EPOCH_ORDINAL + rng.randrange(30, HORIZON_DAYS)
    growth = rng.uniform(0.002, 0.008)
    decline = float(rng.randrange(60, 181))
    if kind == NEW:
        first_day = launch
    elif kind in (SILENT, DECAYING):
        last_day = stop
        rate = decline
    elif kind == GROWING:
        rate = growth
    contact_every = rng.randrange(7, 91)
    return Company(
        index=index,
        company_id=company_id(index),
        kind=kind,
        base_users=base_users,
        events_per_user=events_per_user,
        first_day=first_day,
        last_day=last_day,
        rate=rate,
        name=f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {rng.choice(_SUFFIXES)}",
        country=rng.choice(_COUNTRIES),
        industry_tag=rng.choice(_INDUSTRIES),
        contact_every=contact_every,
        contact_phase=rng.randrange(contact_every),
        line_prefix=f'{{"company_id":"{company_id(index)}","active_users":',
    )


def usage_lines(
    seed: int, n_companies: int, day: date, start: int = 0, stop: int | None = None
) -> list[bytes]:
    """The day's usage records of companies start..stop-1 (by index), as compact JSON lines.

    Companies not active that day (not launched yet, churned, silent) have no record, so a
    range can yield fewer records than companies.
    """
    population = companies(seed, n_companies)
    stop = len(population) if stop is None else min(stop, len(population))
    ordinal = day.toordinal()
    days_from_epoch = ordinal - _EPOCH_ORDINAL
    weekday = WEEKDAY_FACTOR[day.weekday()]
    iso = day.isoformat()
    ts_head, tail = f',"ts":"{iso}T', f'Z","date":"{iso}"}}'
    clock = _clock()
    out: list[bytes] = []
    append = out.append
    index = max(0, start)
    while index < stop:
        block = index // BLOCK_SIZE
        block_stop = min(stop, (block + 1) * BLOCK_SIZE)
        rng = random.Random(f"{seed}:{ordinal}:{block}")
        draw = rng.random
        for _ in range(DRAWS_PER_RECORD * (index - block * BLOCK_SIZE)):
            draw()
        for company in population[index:block_stop]:
            u, v, w = draw(), draw(), draw()
            if ordinal < company.first_day or ordinal > company.last_day:
                continue
            factor = weekday
            if company.kind != STEADY:
                factor *= _trend(company, ordinal, days_from_epoch)
            users = int(company.base_users * factor * (0.75 + 0.5 * u) + 0.5)
            if users == 0:
                continue  # no activity, no record: small companies skip quiet days
            events = int(users * company.events_per_user * (0.8 + 0.4 * v))
            append(
                f'{company.line_prefix}{users},"events":{events}'
                f"{ts_head}{clock[int(w * _ACTIVE_SECONDS)]}{tail}".encode()
            )
        index = block_stop
    return out


@lru_cache(maxsize=1)
def _clock() -> tuple[str, ...]:
    """'HH:MM:SS' for every second of the active hours: a lookup beats formatting per record."""
    return tuple(
        f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
        for s in range(_FIRST_ACTIVE_SECOND, _FIRST_ACTIVE_SECOND + _ACTIVE_SECONDS)
    )


def _trend(company: Company, ordinal: int, days_from_epoch: int) -> float:
    kind = company.kind
    if kind == GROWING:
        return min(_GROWTH_CAP, max(_GROWTH_FLOOR, math.exp(company.rate * days_from_epoch)))
    if kind == DECAYING:
        left = company.last_day - ordinal + 1
        return 1.0 if left >= company.rate else max(_DECAY_FLOOR, left / company.rate)
    if kind == NEW:
        return min(1.0, 0.25 + 0.75 * (ordinal - company.first_day) / NEW_RAMP_DAYS)
    return 1.0


def crm_rows(seed: int, n_companies: int, day: date) -> list[tuple[str, str, str, str, str]]:
    """The CRM snapshot of a day: every company known by then (churned ones included)."""
    ordinal = day.toordinal()
    rows = []
    for company in companies(seed, n_companies):
        if ordinal < company.first_day - CRM_LEAD_DAYS:
            continue
        contact = ordinal - (ordinal - company.contact_phase) % company.contact_every
        minute = 8 * 60 + (company.index * 37) % 600  # a working-hours time, fixed per company
        clock = f"{minute // 60:02d}:{minute % 60:02d}:00"
        contacted = f"{date.fromordinal(contact).isoformat()}T{clock}Z"
        rows.append(
            (company.company_id, company.name, company.country, company.industry_tag, contacted)
        )
    return rows


def crm_csv(seed: int, n_companies: int, day: date) -> bytes:
    """The day's CRM snapshot as the CRM exports it: UTF-8 CSV with a header line."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CRM_HEADER)
    writer.writerows(crm_rows(seed, n_companies, day))
    return buffer.getvalue().encode("utf-8")


def write_crm_csv(
    store: BlobStore, crm_blob_path: str, seed: int, n_companies: int, day: date
) -> str:
    """Write the day's CRM snapshot where the CRM loader looks for it; return 'container/path'."""
    container, prefix = rawzone.crm_location(crm_blob_path)
    path = prefix + rawzone.crm_file_name(day)
    store.write(container, path, [crm_csv(seed, n_companies, day)])
    return f"{container}/{path}"
