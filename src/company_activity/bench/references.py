"""The benchmark's reference points: what each stage would cost at the least.

Each is measured on the same input as the stage it bounds, in the same process: DuckDB's own
readers for the staging load and the backfill, a bare window query for the analytics merge,
plain requests for the API client, and a full recompute of the analytics table.
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import requests

from company_activity.bench.report import Scale
from company_activity.bench.workspace import RUN_ID, Workspace, api_config
from company_activity.dates import utc_now
from company_activity.errors import TerminalError
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.ingest.fetch import fetch_day
from company_activity.ingest.pages import FetchStats
from company_activity.ingest.rawzone import crm_file_name, crm_location, read_manifest
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.mock.source import GeneratorSource
from company_activity.model import merge as model
from company_activity.staging.usage import load_usage
from company_activity.warehouse.schema import COMPANY_ACTIVITY_METRICS

LOAD_REPEATS = 5  # staging loads of one day, and as many of each reference load
FLOOR_SAMPLE_DATES = 5  # dates generated to time the page source for the backfill floor
FETCH_DAYS = 5  # days fetched for the loopback and client-ceiling figures (steadier than one)


# --- ceilings ----------------------------------------------------------------------------------


_BARE_USAGE_COLUMNS = (
    "company_id VARCHAR, active_users INTEGER, events BIGINT, ts TIMESTAMP, date DATE"
)
_READ_JSON_COLUMNS = (
    "{company_id: 'VARCHAR', active_users: 'INTEGER', events: 'BIGINT', ts: 'TIMESTAMP', "
    "date: 'DATE'}"
)
# The ceiling: DuckDB's own reader into a bare typed table.
_CEILING_LOAD = (
    "INSERT INTO usage_bare SELECT * FROM read_json($paths, format = 'newline_delimited', "
    f"columns = {_READ_JSON_COLUMNS})"
)
# The same read keeping each line's text too, as staging must (provenance): every line read
# once as text and parsed once; no rules, reasons, quarantine, replace or audit.
_RAW_FLOOR_LOAD = (
    "INSERT INTO usage_raw SELECT j.company_id, j.active_users, j.events, j.ts, j.date, line "
    'FROM (SELECT line, json_transform(line, \'{"company_id": "VARCHAR", '
    '"active_users": "INTEGER", "events": "BIGINT", "ts": "TIMESTAMP", '
    '"date": "DATE"}\') AS j FROM read_csv($paths, columns = {line: \'VARCHAR\'}, '
    "header = false, delim = chr(1), quote = '', escape = '', auto_detect = false))"
)


def load_figures(
    env: Workspace, day: date
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The staging load of `day` against the ceiling and the raw floor, LOAD_REPEATS each.

    Taken in turns (staging, ceiling, floor) and reported as medians: one measurement of a
    20 ms statement on a shared 2-core machine is mostly noise. The staging reloads replace
    the date's rows, so they leave the warehouse as it was.
    """
    container = env.settings.blob_container
    manifest = read_manifest(env.store, container, day)
    if manifest is None:  # pragma: no cover - the daily run just wrote it
        raise TerminalError(f"no manifest for {day}")
    paths = [str(Path(env.settings.local_blob_dir) / container / p.path) for p in manifest.parts]
    staging: list[float] = []
    ceiling: list[float] = []
    floor: list[float] = []
    rows = 0
    for attempt in range(LOAD_REPEATS):
        started = time.perf_counter()
        result = load_usage(env.wh, env.store, day, container=container, run_id=RUN_ID)
        staging.append(time.perf_counter() - started)
        con = duckdb.connect(str(env.folder / f"ceiling-{attempt}.duckdb"))
        try:
            con.execute(f"CREATE TABLE usage_bare ({_BARE_USAGE_COLUMNS})")
            con.execute(f"CREATE TABLE usage_raw ({_BARE_USAGE_COLUMNS}, raw VARCHAR)")
            for statement, into in ((_CEILING_LOAD, ceiling), (_RAW_FLOOR_LOAD, floor)):
                started = time.perf_counter()
                con.execute(statement, {"paths": paths})
                into.append(time.perf_counter() - started)
            counted = con.execute("SELECT COUNT(*) FROM usage_bare").fetchone()
            rows = int(counted[0]) if counted else 0
        finally:
            con.close()
    lines = result.lines_read

    def figure(seconds: list[float]) -> dict[str, Any]:
        return {
            "seconds": round(statistics.median(seconds), 4),
            "runs": [round(s, 4) for s in seconds],
        }

    return (
        {**figure(staging), "lines": lines, "files": len(paths)},
        {**figure(ceiling), "rows": rows, "files": len(paths)},
        {**figure(floor), "rows": rows},
    )


_CRM_TYPED_FLOOR = (
    "INSERT INTO crm_bare SELECT * FROM read_csv($path, header = true, delim = ',', "
    "quote = '\"', escape = '\"', auto_detect = false, columns = "
    "{company_id: 'VARCHAR', company_name: 'VARCHAR', country: 'VARCHAR', "
    "industry_tag: 'VARCHAR', last_contact_at: 'TIMESTAMP'})"
)
_CRM_LINES_FLOOR = (
    "INSERT INTO crm_lines SELECT line FROM read_csv($path, columns = {line: 'VARCHAR'}, "
    "header = false, skip = 1, delim = chr(1), quote = '', escape = '', auto_detect = false)"
)


def backfill_floor(
    env: Workspace,
    scale: Scale,
    day: date,
    dates: int,
    stages: dict[str, Any],
    ceilings: dict[str, Any],
) -> dict[str, Any]:
    """What the backfill's work costs at the least, per date times dates, plus one recompute.

    Per date: generating the day's usage lines (the page source the backfill reads), the
    usage raw floor (read and parse once, keep the text: measured above), and the same for
    the CRM export (DuckDB's CSV reader into a typed table, plus its lines as text). Then one
    set-based merge of everything (the full recompute above). No rules, quarantine, audit,
    dimension merge, validation or run log: a bound no implementation of the contract beats.
    """
    source = GeneratorSource(scale.seed, scale.companies)
    sample = [day + timedelta(days=k) for k in range(FLOOR_SAMPLE_DATES)]
    started = time.perf_counter()
    for sample_day in sample:
        for _page in source.pages(sample_day, FetchStats()):
            pass
    generate = (time.perf_counter() - started) / len(sample)
    container, prefix = crm_location(env.settings.crm_blob_path)
    path = str(Path(env.settings.local_blob_dir) / container / prefix / crm_file_name(day))
    crm: list[float] = []
    con = duckdb.connect(str(env.folder / "crm-floor.duckdb"))
    try:
        for _attempt in range(LOAD_REPEATS):
            con.execute(
                "CREATE OR REPLACE TABLE crm_bare (company_id VARCHAR, company_name VARCHAR, "
                "country VARCHAR, industry_tag VARCHAR, last_contact_at TIMESTAMP)"
            )
            con.execute("CREATE OR REPLACE TABLE crm_lines (line VARCHAR)")
            started = time.perf_counter()
            con.execute(_CRM_TYPED_FLOOR, {"path": path})
            con.execute(_CRM_LINES_FLOOR, {"path": path})
            crm.append(time.perf_counter() - started)
    finally:
        con.close()
    crm_floor = statistics.median(crm)
    usage_floor = float(ceilings["load_raw_floor"]["seconds"])
    recompute = float(stages["full_recompute"]["seconds"])
    per_date = generate + usage_floor + crm_floor
    return {
        "seconds": round(dates * per_date + recompute, 2),
        "dates": dates,
        "generate_per_date_s": round(generate, 4),
        "usage_raw_floor_per_date_s": round(usage_floor, 4),
        "crm_raw_floor_per_date_s": round(crm_floor, 4),
        "full_recompute_s": recompute,
    }


# The same rolling sums as populate_analytics.sql over the same lookback, for one day: no
# MERGE, no flags, no carried rows, no bookkeeping.
_WINDOW_CEILING = """
CREATE OR REPLACE TEMP TABLE window_ceiling AS
WITH day_usage AS (
    SELECT company_id, file_date, max(active_users) AS active_users, max(events) AS events
    FROM stg.product_usage
    WHERE file_date BETWEEN $first AND $day
    GROUP BY company_id, file_date
),
grid AS (
    SELECT co.company_id, cal.calendar_date,
        COALESCE(u.active_users, 0) AS active_users, COALESCE(u.events, 0) AS events
    FROM dim.companies AS co
    CROSS JOIN dim.calendar AS cal
    LEFT JOIN day_usage AS u
        ON u.company_id = co.company_id AND u.file_date = cal.calendar_date
    WHERE cal.calendar_date BETWEEN $first AND $day
),
w AS (
    SELECT company_id, calendar_date,
        SUM(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS users_7d,
        SUM(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 13 PRECEDING AND 7 PRECEDING) AS users_previous_7d,
        SUM(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS users_30d,
        MAX(active_users) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS peak_users_30d,
        SUM(events) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS events_30d,
        SUM(events) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 13 PRECEDING AND CURRENT ROW) AS events_14d,
        SUM(events) OVER (PARTITION BY company_id ORDER BY calendar_date
            ROWS BETWEEN 43 PRECEDING AND 14 PRECEDING) AS events_prior_30d,
        SUM(CASE WHEN active_users > 0 THEN 1 ELSE 0 END) OVER (PARTITION BY company_id
            ORDER BY calendar_date ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS active_days_30d
    FROM grid
)
SELECT * FROM w WHERE calendar_date = $day
"""


def window_ceiling(env: Workspace, day: date) -> dict[str, Any]:
    first = day - timedelta(days=model.LOOKBACK_DAYS)
    started = time.perf_counter()
    env.wh.con.execute(_WINDOW_CEILING, {"first": first, "day": day})
    seconds = time.perf_counter() - started
    rows = env.wh.con.execute("SELECT COUNT(*) FROM window_ceiling").fetchone()
    env.wh.con.execute("DROP TABLE window_ceiling")
    return {"seconds": round(seconds, 4), "rows": rows[0] if rows else 0}


def fetch_figures(
    env: Workspace, scale: Scale, after: date
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Pages per second: the client writing the raw zone vs plain requests parsing JSON only.

    One untimed day warms both (the mock server's company table, the connections); then the
    two take turns day by day, so a noisy moment on this shared machine weighs on both alike.
    """
    warm_up, *days = [after + timedelta(days=k) for k in range(1, FETCH_DAYS + 2)]
    mock = MockApiConfig(seed=scale.seed, companies=scale.companies)
    pages = records = plain_pages = 0
    fetch_seconds = plain_seconds = 0.0
    with MockApiServer(mock) as server, ApiClient(api_config(env, server, mock)) as client:
        for day in (warm_up, *days):
            started = time.perf_counter()
            result = fetch_day(
                client,
                env.store,
                env.settings.blob_container,
                day,
                run_id=RUN_ID,
                fetched_at=utc_now().isoformat(),
            )
            seconds = time.perf_counter() - started
            day_pages, day_plain_seconds = _plain_client(client.config, [day])
            if day == warm_up:
                continue
            pages += result.pages
            records += result.records
            fetch_seconds += seconds
            plain_pages += day_pages
            plain_seconds += day_plain_seconds
    fetch = {
        "seconds": round(fetch_seconds, 4),
        "pages": pages,
        "records": records,
        "pages_per_s": round(pages / fetch_seconds, 1),
    }
    plain = {
        "seconds": round(plain_seconds, 4),
        "pages": plain_pages,
        "pages_per_s": round(plain_pages / plain_seconds, 1),
    }
    return fetch, plain


def _plain_client(config: ApiConfig, days: list[date]) -> tuple[int, float]:
    """The same pages with a plain requests session: JSON parse only, nothing written."""
    pages = 0
    started = time.perf_counter()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {config.api_key}"
        for day in days:
            page: int | str | None = 1
            while page is not None:
                response = session.get(
                    config.url,
                    params={"date": day.isoformat(), "page": page, "per_page": config.page_size},
                    timeout=(config.connect_timeout, config.read_timeout),
                )
                response.raise_for_status()
                page = response.json()["next_page"]
                pages += 1
    return pages, time.perf_counter() - started


def full_recompute(env: Workspace, first: date, last: date) -> None:
    """Rebuild the whole analytics table from staging, as the seed did every day."""
    with env.wh.transaction():
        env.wh.execute(f"DELETE FROM {COMPANY_ACTIVITY_METRICS.name}")
        model.merge_analytics(env.wh, first, last, RUN_ID, utc_now())
