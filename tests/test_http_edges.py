"""Edges of the HTTP layer a demanding user tried after the field cases (issue 14, issue 15):
answers whose headers are cut short, and Retry-After values no real wait can honour. Each runs
against a real local server (tests/scripted_api.py).
"""

from __future__ import annotations

import logging
from datetime import date

import pytest

from company_activity.errors import TransientError
from company_activity.ingest import api_client
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.ingest.pages import FetchStats
from company_activity.retry import MAX_RETRY_AFTER_SECONDS, parse_retry_after
from tests.scripted_api import Reply, scripted

KEY = "edge-test-key-8d1f0c77"
DAY = date(2025, 11, 23)
ITEM = b'{"company_id":"c100","active_users":5,"events":40}'
PAGE = b'{"items":[' + ITEM + b'],"next_page":null}'
JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(api_client, "sleep", waited.append)
    return waited


def fetch(url: str, **options: object) -> tuple[list[bytes], FetchStats]:
    settings: dict[str, object] = {
        "url": url + "?code=url-secret-5521",  # a key in the query (Azure Functions style)
        "api_key": KEY,
        "deadline_seconds": 5.0,
        "max_attempts": 2,
        "max_backoff_seconds": 60.0,
    }
    settings.update(options)
    stats = FetchStats()
    with ApiClient(ApiConfig(**settings)) as api:  # type: ignore[arg-type]
        lines = [line for page in api.pages(DAY, stats) for line in page.lines]
    return lines, stats


@pytest.mark.parametrize(
    "cut",
    [
        len("HTTP/1.1 200 OK\r\nContent-Ty"),
        len("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCont"),
    ],
)
def test_headers_cut_short_are_transient_retried_and_log_no_traceback(
    cut: int, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    # The server closes the connection in the middle of a header line: not a 200 with an
    # empty body, and never urllib3's traceback (with the URL's query) in the log.
    caplog.set_level(logging.INFO)
    with scripted({"*": [Reply(200, JSON, PAGE, cut_head=cut), Reply(200, JSON, PAGE)]}) as api:
        lines, stats = fetch(api.url())
    assert lines == [ITEM]
    assert stats.retries == 1 and len(api.requests) == 2 and len(sleeps) == 1
    assert "headers were cut short or malformed" in caplog.text
    assert "not JSON" not in caplog.text
    assert "Traceback" not in caplog.text and "url-secret-5521" not in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_headers_cut_short_every_time_give_up_as_transient() -> None:
    cut = Reply(200, JSON, PAGE, cut_head=len("HTTP/1.1 200 OK\r\nContent-Ty"))
    with scripted({"*": [cut]}) as api, pytest.raises(TransientError) as caught:
        fetch(api.url())
    assert "gave up on date 2025-11-23 page 1 after 2 attempt(s)" in str(caught.value)
    assert "headers were cut short or malformed" in str(caught.value)


@pytest.mark.parametrize(
    "value", ["99999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT", "315360000000"]
)
def test_retry_after_beyond_any_date_stops_at_once_without_a_crash(
    value: str, sleeps: list[float]
) -> None:
    # A wait too long for any clock (today: "unexpected OverflowError", exit 2) is still a
    # promise: no request before it, so the date stops at once, transient (exit 75).
    with (
        scripted({"*": [Reply(429, {"Retry-After": value}, b"slow down")]}) as api,
        pytest.raises(TransientError) as caught,
    ):
        fetch(api.url())
    assert len(api.requests) == 1 and sleeps == []
    message = str(caught.value)
    assert "later than API_MAX_BACKOFF_SECONDS (60 s) allows" in message
    assert "Re-run the date after" in message


@pytest.mark.parametrize("value", ["inf", "Infinity", "1e400", "1e3", "nan", "0x10", "5s"])
def test_retry_after_not_in_the_rfc_forms_is_unreadable_and_backs_off(
    value: str, sleeps: list[float]
) -> None:
    # RFC 9110 section 10.2.3: delay-seconds (digits) or an HTTP date. Anything else says
    # nothing about when to come back: normal backoff, as for an absent header.
    script = {"*": [Reply(503, {"Retry-After": value}, b"busy"), Reply(200, JSON, PAGE)]}
    with scripted(script) as api:
        lines, _stats = fetch(api.url())
    assert lines == [ITEM] and len(api.requests) == 2
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0  # the first backoff step


def test_parse_retry_after_keeps_every_wait_within_the_clock() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("99999999999999999999", now) == MAX_RETRY_AFTER_SECONDS
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) == MAX_RETRY_AFTER_SECONDS
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("2.5", now) == 2.5
    for value in ("inf", "-inf", "1e400", "1e3", "nan", "+5", "5s"):
        assert parse_retry_after(value, now) is None, value
