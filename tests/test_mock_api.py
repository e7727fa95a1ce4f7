"""The mock API (a real local HTTP server) and the synthetic data generator behind it."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

import pytest
import requests

from company_activity.cli import main
from company_activity.errors import ConfigError
from company_activity.mock import data as mock_data
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.mock.faults import parse_fault_rates
from company_activity.storage import LocalFolderStore
from tests.ingestion_fixtures import API_KEY, DAY, SEED, mock_server

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def get(server: MockApiServer, **params: str | int) -> requests.Response:
    return requests.get(server.url, params=params, headers=AUTH, timeout=5)


def all_items(
    server: MockApiServer, day: date, per_page: int
) -> tuple[list[dict[str, Any]], list[int | str | None]]:
    items: list[dict[str, Any]] = []
    pages: list[int | str | None] = []
    page: int | str | None = 1
    while page is not None:
        body = get(server, date=day.isoformat(), page=page, per_page=per_page).json()
        items += body["items"]
        page = body["next_page"]
        pages.append(page)
    return items, pages


# --- the HTTP contract ----------------------------------------------------------------------


def test_pages_mode_serves_the_generator_in_numbered_pages() -> None:
    with mock_server() as server:
        items, pages = all_items(server, DAY, per_page=10)
    assert pages == [2, 3, None]
    expected = [json.loads(line) for line in mock_data.usage_lines(SEED, 25, DAY)]
    assert items == expected
    assert {"company_id", "active_users", "events", "ts", "date"} <= set(items[0])


def test_cursor_mode_serves_opaque_cursors() -> None:
    with mock_server(pagination="cursor") as server:
        items, pages = all_items(server, DAY, per_page=10)
    assert len(pages) == 3 and pages[-1] is None
    assert all(isinstance(p, str) and not p.isdigit() for p in pages[:-1])
    assert len(items) == len(mock_data.usage_lines(SEED, 25, DAY))


def test_requests_are_checked() -> None:
    with mock_server(pagination="cursor") as server:
        no_key = requests.get(server.url, params={"date": "2025-03-03"}, timeout=5)
        wrong_key = requests.get(
            server.url,
            params={"date": "2025-03-03"},
            headers={"Authorization": "Bearer x"},
            timeout=5,
        )
        wrong_path = requests.get(server.url + "/x", headers=AUTH, timeout=5)
        bad_date = get(server, date="03/03/2025")
        bad_per_page = get(server, date="2025-03-03", per_page=0)
        bad_cursor = get(server, date="2025-03-03", page="not-a-cursor")
    assert no_key.status_code == wrong_key.status_code == 401
    assert no_key.headers["WWW-Authenticate"] == "Bearer"
    assert wrong_path.status_code == 404
    assert bad_date.status_code == bad_per_page.status_code == bad_cursor.status_code == 400
    assert "YYYY-MM-DD" in bad_date.json()["error"]


def test_scripted_faults_apply_to_matching_requests_only() -> None:
    with mock_server() as server:
        server.api.inject("503", times=2, day=DAY, page=2, retry_after="3")
        first = get(server, date=DAY.isoformat(), page=1, per_page=10)
        other_day = get(server, date="2025-03-04", page=2, per_page=10)
        faulty = [get(server, date=DAY.isoformat(), page=2, per_page=10) for _ in range(3)]
        throttled_default = MockApiConfig().retry_after
        server.api.inject("429")
        throttled = get(server, date=DAY.isoformat())
    assert first.status_code == other_day.status_code == 200
    assert [r.status_code for r in faulty] == [503, 503, 200]
    assert faulty[0].headers["Retry-After"] == "3"
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == throttled_default
    assert [r.status for r in server.api.requests] == [200, 200, 503, 503, 200, 429]


def test_truncated_body_is_cut_short() -> None:
    with mock_server() as server:
        server.api.inject("truncate")
        with pytest.raises(requests.exceptions.RequestException):
            get(server, date=DAY.isoformat())
        assert get(server, date=DAY.isoformat()).status_code == 200


def test_rate_faults_hit_every_request_at_rate_one() -> None:
    with mock_server(fault_rates={"502": 1.0}) as server:
        assert get(server, date=DAY.isoformat()).status_code == 502


def test_data_faults_are_deterministic_and_recognisable() -> None:
    rates = {"duplicate": 0.2, "case": 0.2, "malformed": 0.2}
    with mock_server(companies=200, fault_rates=rates) as server:
        first, _ = all_items(server, DAY, per_page=50)
        again, _ = all_items(server, DAY, per_page=50)
    assert first == again
    clean = [json.loads(line) for line in mock_data.usage_lines(SEED, 200, DAY)]
    assert len(first) > len(clean)
    ids = [item.get("company_id") for item in first]
    assert any(isinstance(i, str) and i.startswith("C") for i in ids)  # case variants
    as_text = [json.dumps(item, sort_keys=True) for item in first]
    assert len(set(as_text)) < len(as_text)  # exact duplicates
    broken = [
        item
        for item in first
        if not isinstance(item.get("company_id"), str)
        or not isinstance(item.get("active_users"), int)
        or item.get("events", 0) < 0
        or not str(item.get("ts", "")).startswith("2025")
    ]
    assert broken
    assert all(isinstance(item, dict) for item in first)  # pages stay valid for the client


def test_fault_spec_parsing() -> None:
    assert parse_fault_rates("429=0.05, slow=0.1,duplicate=1") == {
        "429": 0.05,
        "slow": 0.1,
        "duplicate": 1.0,
    }
    assert parse_fault_rates("") == {}
    for bad in ("teapot=0.1", "429", "429=2", "429=lots"):
        with pytest.raises(ConfigError):
            parse_fault_rates(bad)


def test_serves_on_loopback_only() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        MockApiServer(MockApiConfig(), host="0.0.0.0")


def test_cli_serves_until_stopped(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "company_activity",
            "--env-file",
            os.devnull,
            "mock-api",
            "--port",
            "0",
            "--companies",
            "5",
            "--api-key",
            API_KEY,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split(" at ", 1)[1].split(" ", 1)[0]
        response = requests.get(url, params={"date": "2025-03-03"}, headers=AUTH, timeout=5)
        assert response.status_code == 200
        assert len(response.json()["items"]) == 5
        assert API_KEY not in banner
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "mock API stopped" in out


# --- the generator --------------------------------------------------------------------------


def test_generator_is_a_pure_function_of_seed_size_and_date() -> None:
    day = date(2025, 8, 14)
    first = mock_data.usage_lines(SEED, 300, day)
    mock_data._companies.cache_clear()
    assert mock_data.usage_lines(SEED, 300, day) == first
    assert mock_data.usage_lines(SEED + 1, 300, day) != first
    # any slice of companies regenerates alone; companies keep their data as N grows
    pieces = [mock_data.usage_lines(SEED, 300, day, s, s + 37) for s in range(0, 300, 37)]
    assert [line for piece in pieces for line in piece] == first
    bigger = mock_data.usage_lines(SEED, 3000, day, 0, 300)
    assert bigger == first


def _daily_users(n: int, days: list[date]) -> dict[date, dict[str, int]]:
    usage = {}
    for day in days:
        records = [json.loads(line) for line in mock_data.usage_lines(SEED, n, day)]
        usage[day] = {r["company_id"]: r["active_users"] for r in records}
    return usage


def test_weekdays_are_busier_than_weekends() -> None:
    week = [date(2025, 5, 5) + timedelta(days=k) for k in range(7)]  # Monday .. Sunday
    usage = _daily_users(1000, week)
    totals = [sum(usage[day].values()) for day in week]
    assert min(totals[:5]) > 2 * max(totals[5:])


def test_population_has_every_kind_of_company() -> None:
    population = mock_data.companies(SEED, 3000)
    kinds = {c.kind for c in population}
    assert kinds == {"steady", "growing", "decaying", "silent", "new"}

    def by_kind(kind: str) -> list[mock_data.Company]:
        return [c for c in population if c.kind == kind]

    spring, autumn = date(2025, 3, 3), date(2025, 10, 6)  # both Mondays
    usage = _daily_users(3000, [spring, autumn])

    growing = [c.company_id for c in by_kind("growing")]
    assert mean(usage[autumn][i] for i in growing) > 1.5 * mean(usage[spring][i] for i in growing)

    for company in by_kind("silent") + by_kind("decaying"):
        last = company.last_date
        assert last is not None
        day_after = mock_data.usage_lines(
            SEED, 3000, last + timedelta(days=1), company.index, company.index + 1
        )
        assert day_after == []
    churned = [c for c in by_kind("decaying") if c.last_date and c.last_date < autumn]
    assert churned and all(c.company_id not in usage[autumn] for c in churned)

    new = by_kind("new")
    launches = {c.first_date for c in new}
    weeks = {(d - mock_data.EPOCH).days // 7 for d in launches if d is not None}
    assert set(range(10)) <= weeks  # new companies every week
    launched_later = [c for c in new if c.first_date and c.first_date > autumn]
    assert all(c.company_id not in usage[autumn] for c in launched_later)


def test_crm_snapshot_matches_the_usage_population(tmp_path: Path) -> None:
    day = date(2025, 6, 2)
    text = mock_data.crm_csv(SEED, 500, day).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["company_id", "company_name", "country", "industry_tag", "last_contact_at"]
    ids = {row[0] for row in rows[1:]}
    active = {json.loads(line)["company_id"] for line in mock_data.usage_lines(SEED, 500, day)}
    assert active <= ids
    assert all(row[4][:10] <= day.isoformat() and row[4].endswith("Z") for row in rows[1:])
    assert all(all(row) for row in rows[1:])

    store = LocalFolderStore(tmp_path)
    where = mock_data.write_crm_csv(store, "raw/crm/", SEED, 500, day)
    assert where == "raw/crm/crm_companies_2025-06-02.csv"
    with store.open_read("raw", "crm/crm_companies_2025-06-02.csv") as handle:
        assert handle.read().decode() == text


def test_cli_writes_crm_files_without_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "blob"))
    monkeypatch.setenv("CRM_BLOB_PATH", "raw/crm/")
    code = main(
        [
            "--env-file",
            os.devnull,
            "mock-api",
            "--companies",
            "20",
            "--crm-start",
            "2025-03-01",
            "--crm-end",
            "2025-03-03",
            "--no-serve",
        ]
    )
    assert code == 0
    files = LocalFolderStore(tmp_path / "blob").list("raw")
    assert files == [f"crm/crm_companies_2025-03-0{d}.csv" for d in (1, 2, 3)]
