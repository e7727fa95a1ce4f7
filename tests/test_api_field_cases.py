"""API answers as real HTTP stacks send them (issue 15; tests/data/field_cases/ holds the scripts
from the field), through `company-activity fetch` against a real local server
(tests/scripted_api.py): exit codes, messages and the times the requests were sent."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from company_activity.cli import EXIT_TRANSIENT, main
from company_activity.ingest import api_client, rawzone
from company_activity.storage import LocalFolderStore
from tests.scripted_api import Reply, field_case, scripted

KEY = "field-case-key-7d3a91c4"
DAY = date(2025, 11, 23)
CONTAINER = "product-api-raw"
ITEM = b'{"company_id":"c100","active_users":5,"events":40,"ts":"2025-11-23T09:00:00Z"}'


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(api_client, "sleep", waited.append)
    return waited


def fetch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, *dates: str, **env: str
) -> int:
    """`company-activity fetch` for the dates against `url`, isolated under tmp_path."""
    for name in ("BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME"):
        monkeypatch.delenv(name, raising=False)
    settings = {"API_URL": url, "API_KEY": KEY, "LOCAL_BLOB_DIR": str(tmp_path / "blob"), **env}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    start, end = dates[0], dates[-1]
    options = ["--env-file", os.devnull, "fetch", "--start", start, "--end", end]
    return main(options)


def stored(tmp_path: Path, day: date = DAY) -> list[bytes]:
    store = LocalFolderStore(tmp_path / "blob")
    manifest = rawzone.read_manifest(store, CONTAINER, day)
    assert manifest is not None
    lines: list[bytes] = []
    for part in manifest.parts:
        with rawzone.open_part(store, CONTAINER, part) as handle:
            lines.extend(handle.read().splitlines())
    return lines


# --- 07: a proxy's HTML maintenance page with status 200 -------------------------------------


def test_html_page_with_status_200_is_retried_and_the_day_lands(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    with scripted(field_case("07_api_html_200.script.json")) as api:
        code = fetch(monkeypatch, tmp_path, api.url(), "2025-11-23")
    out = capsys.readouterr().out
    assert code == 0
    assert "2025-11-23  ok" in out and "retries=1" in out
    assert len(api.requests) == 2 and len(sleeps) == 1
    assert stored(tmp_path) == [ITEM]


def test_html_page_that_persists_exits_75_quoting_the_start_of_the_body_redacted(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    html = field_case("07_api_html_200.script.json")["2025-11-23|1"][0]
    # A maintenance page that echoes the request, key included, as some proxies do.
    leaky = Reply(html.status, html.headers, html.body + f"<!-- X-Api-Key: {KEY} -->".encode())
    with scripted({"2025-11-23|1": [leaky]}) as api:
        code = fetch(monkeypatch, tmp_path, api.url(), "2025-11-23", API_MAX_ATTEMPTS="3")
    captured = capsys.readouterr()
    assert code == EXIT_TRANSIENT
    assert len(api.requests) == 3 and len(sleeps) == 2
    assert "gave up on date 2025-11-23 page 1 after 3 attempt(s)" in captured.out
    assert "HTTP 200 but the body is not JSON" in captured.out
    assert (
        "<!DOCTYPE html><html><head><title>Service maintenance</title></head><body>"
        "<h1>We will be back soon</h1></body></html>" in captured.out
    )
    assert KEY not in captured.out + captured.err and "X-Api-Key: ***" in captured.out


# --- 18: Retry-After longer than the retry budget --------------------------------------------


def test_retry_after_beyond_the_longest_wait_stops_at_once_naming_when_to_come_back(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    # The field: Retry-After 30 with a 1 s cap; six requests went out inside the window.
    with scripted(field_case("18_retry_after_longer_than_cap.script.json")) as api:
        code = fetch(monkeypatch, tmp_path, api.url(), "2025-11-23", API_MAX_BACKOFF_SECONDS="1")
    out = capsys.readouterr().out
    assert code == EXIT_TRANSIENT
    assert len(api.requests) == 1  # nothing more was sent inside the server's 30 s
    assert sleeps == []
    assert "asked to come back in 30 s" in out
    assert "API_MAX_BACKOFF_SECONDS (1 s)" in out
    match = re.search(r"at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ), later than", out)
    assert match is not None
    come_back = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert 29.0 <= come_back.timestamp() - api.requests[0].at <= 32.0


def test_retry_after_beyond_the_time_left_stops_at_once(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    with scripted(field_case("18_retry_after_longer_than_cap.script.json")) as api:
        code = fetch(
            monkeypatch,
            tmp_path,
            api.url(),
            "2025-11-23",
            API_MAX_BACKOFF_SECONDS="60",
            API_MAX_RETRY_SECONDS="20",
        )
    out = capsys.readouterr().out
    assert code == EXIT_TRANSIENT
    assert len(api.requests) == 1 and sleeps == []
    assert "what is left of API_MAX_RETRY_SECONDS (20 s)" in out


def test_retry_after_is_kept_to_the_second_by_the_request_times(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Real waits here (no patched sleep): the server's clock says when each request came.
    script = {
        "2025-11-23|1": [
            Reply(429, {"Retry-After": "1"}, b"slow down"),
            Reply(503, {"Retry-After": "1.5"}, b"busy"),
            Reply(200, {}, b'{"items":[' + ITEM + b'],"next_page":null}'),
        ]
    }
    with scripted(script) as api:
        code = fetch(monkeypatch, tmp_path, api.url(), "2025-11-23")
    assert code == 0, capsys.readouterr().err
    first, second, third = (seen.at for seen in api.requests)
    assert second - first >= 1.0
    assert third - second >= 1.5
    assert stored(tmp_path) == [ITEM]


def test_a_retry_after_holds_the_next_date_too(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sleeps: list[float],
) -> None:
    # The first date gives up on a 30 s Retry-After; the next date's first request waits it out.
    script = {
        "2025-11-23|1": [Reply(429, {"Retry-After": "30"}, b"")],
        "2025-11-24|1": [Reply(200, {}, b'{"items":[],"next_page":null}')],
    }
    with scripted(script) as api:
        started = time.monotonic()
        code = fetch(
            monkeypatch,
            tmp_path,
            api.url(),
            "2025-11-23",
            "2025-11-24",
            API_MAX_BACKOFF_SECONDS="1",
        )
        elapsed = time.monotonic() - started
    assert code == EXIT_TRANSIENT
    assert "2025-11-24  ok" in capsys.readouterr().out
    assert len(api.requests) == 2
    assert len(sleeps) == 1 and 30.0 - elapsed - 0.5 <= sleeps[0] <= 30.0
