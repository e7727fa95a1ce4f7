"""The API client against the real local HTTP server (company_activity.mock.api).

Waits between attempts are recorded instead of slept (api_client.sleep is patched).
"""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime

import pytest

from company_activity.errors import DataError, TerminalError, TransientError
from company_activity.ingest import api_client
from company_activity.ingest.pages import FetchStats, PageNotJson, parse_page
from company_activity.mock import data as mock_data
from company_activity.retry import parse_retry_after
from tests.ingestion_fixtures import API_KEY, DAY, SEED, client_for, mock_server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(api_client, "sleep", waited.append)
    return waited


def fetch_all(client: api_client.ApiClient, day: date = DAY) -> tuple[list[bytes], FetchStats]:
    stats = FetchStats()
    lines = [line for page in client.pages(day, stats) for line in page.lines]
    return lines, stats


@pytest.mark.parametrize("pagination", ["pages", "cursor"])
def test_multi_page_day_arrives_complete_and_in_order(pagination: str, sleeps: list[float]) -> None:
    with mock_server(pagination=pagination) as server, client_for(server) as client:
        lines, stats = fetch_all(client)
    assert lines == mock_data.usage_lines(SEED, 25, DAY)
    assert stats.pages == 3
    assert stats.retries == 0
    assert server.api.attempts(DAY) == 3
    assert sleeps == []


def test_429_with_retry_after_waits_as_told(sleeps: list[float]) -> None:
    with mock_server() as server, client_for(server) as client:
        server.api.inject("429", times=2, page=1, retry_after="7")
        lines, stats = fetch_all(client)
    assert len(lines) == len(mock_data.usage_lines(SEED, 25, DAY))
    assert server.api.attempts(DAY, page=1) == 3
    assert sleeps == [7.0, 7.0]
    assert stats.retries == 2


def test_retry_after_http_date_beyond_the_longest_wait_stops_at_once(
    sleeps: list[float],
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    with mock_server() as server, client_for(server, max_backoff_seconds=30.0) as client:
        server.api.inject("429", times=1, retry_after=format_datetime(later, usegmt=True))
        with pytest.raises(TransientError) as caught:
            fetch_all(client)
    assert sleeps == []  # never clipped to 30 s: the next request would come too early
    assert server.api.attempts(DAY) == 1
    assert f"at {later:%Y-%m-%dT%H:%M}" in str(caught.value)
    assert "later than API_MAX_BACKOFF_SECONDS (30 s) allows" in str(caught.value)


def test_retry_after_zero_falls_back_to_normal_backoff(sleeps: list[float]) -> None:
    with mock_server() as server, client_for(server) as client:
        server.api.inject("429", times=1, retry_after="0")
        fetch_all(client)
    assert len(sleeps) == 1
    assert 1.0 <= sleeps[0] <= 2.0  # first backoff step: 1 s plus up to 1 s of jitter


def test_503_then_success_is_retried_once(sleeps: list[float]) -> None:
    with mock_server() as server, client_for(server) as client:
        server.api.inject("503", times=1, page=2)
        lines, stats = fetch_all(client)
    assert len(lines) == len(mock_data.usage_lines(SEED, 25, DAY))
    assert server.api.attempts(DAY, page=2) == 2
    assert stats.retries == 1
    assert len(sleeps) == 1


def test_persistent_500_gives_up_after_the_attempt_bound(sleeps: list[float]) -> None:
    with mock_server() as server, client_for(server, max_attempts=4) as client:
        server.api.inject("500", times=None)
        with pytest.raises(TransientError) as caught:
            fetch_all(client)
    message = str(caught.value)
    assert "gave up on date 2025-03-03 page 1 after 4 attempt(s)" in message
    assert "HTTP 500" in message
    assert "re-run the date later" in message
    assert server.api.attempts(DAY) == 4
    assert len(sleeps) == 3
    # exponential: 1, 2, 4 seconds, each plus up to 1 s of jitter
    for wait, base in zip(sleeps, (1.0, 2.0, 4.0), strict=True):
        assert base <= wait <= base + 1.0


def test_total_retry_time_is_bounded(sleeps: list[float]) -> None:
    options = {"max_retry_seconds": 20.0, "max_backoff_seconds": 60.0}
    with mock_server() as server, client_for(server, **options) as client:
        server.api.inject("429", times=None, retry_after="45")
        with pytest.raises(TransientError, match="after 1 attempt"):
            fetch_all(client)
    assert sleeps == []  # the first wait alone would pass the 20 s budget
    assert server.api.attempts(DAY) == 1


@pytest.mark.parametrize("kind", ["truncate", "502", "504"])
def test_other_transient_faults_are_retried(kind: str, sleeps: list[float]) -> None:
    with mock_server() as server, client_for(server) as client:
        server.api.inject(kind, times=1, page=1)
        lines, stats = fetch_all(client)
    assert len(lines) == len(mock_data.usage_lines(SEED, 25, DAY))
    assert server.api.attempts(DAY, page=1) == 2
    assert stats.retries == 1


def test_slow_response_times_out_and_is_retried(sleeps: list[float]) -> None:
    with mock_server(slow_seconds=0.6) as server, client_for(server, read_timeout=0.2) as client:
        server.api.inject("slow", times=1, page=1)
        lines, stats = fetch_all(client)
    assert len(lines) == len(mock_data.usage_lines(SEED, 25, DAY))
    assert stats.retries == 1


def test_connection_refused_is_transient_and_bounded(sleeps: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = api_client.ApiConfig(
        url=f"http://127.0.0.1:{port}/usage",
        api_key=API_KEY,
        max_attempts=3,
        connect_timeout=1.0,
    )
    with api_client.ApiClient(config) as client, pytest.raises(TransientError) as caught:
        fetch_all(client)
    assert "after 3 attempt(s)" in str(caught.value)
    assert f"connection to http://127.0.0.1:{port} failed" in str(caught.value)
    assert len(sleeps) == 2


def test_401_fails_at_once_naming_the_setting(sleeps: list[float]) -> None:
    with (
        mock_server() as server,
        client_for(server, api_key="wrong-key-123456") as client,
        pytest.raises(TerminalError) as caught,
    ):
        fetch_all(client)
    assert "HTTP 401" in str(caught.value)
    assert "check API_KEY" in str(caught.value)
    assert "wrong-key-123456" not in str(caught.value)
    assert server.api.attempts() == 1
    assert sleeps == []


def test_404_points_at_api_url_without_leaking_a_key_in_it(sleeps: list[float]) -> None:
    with mock_server() as server:
        url = server.url.replace("/usage", "/nope") + f"?code={API_KEY}"
        with client_for(server, url=url) as client, pytest.raises(TerminalError) as caught:
            fetch_all(client)
    assert "HTTP 404" in str(caught.value)
    assert "check API_URL" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert sleeps == []


def test_custom_auth_header_carries_the_bare_key(sleeps: list[float]) -> None:
    with (
        mock_server(auth_header="X-Api-Key") as server,
        client_for(server, auth_header="X-Api-Key") as client,
    ):
        lines, _ = fetch_all(client)
    assert len(lines) == len(mock_data.usage_lines(SEED, 25, DAY))


def test_page_that_is_not_json_is_transient_and_retried(sleeps: list[float]) -> None:
    with mock_server() as server, client_for(server, max_attempts=3) as client:
        server.api.inject("badjson", times=None, page=2)
        with pytest.raises(TransientError) as caught:
            fetch_all(client)
    assert "gave up on date 2025-03-03 page 2 after 3 attempt(s)" in str(caught.value)
    assert "body is not JSON" in str(caught.value)
    assert "<html><body>Service temporarily unavailable</body></html>" in str(caught.value)
    assert server.api.attempts(DAY, page=2) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("kind", "detail"),
    [("noitems", "no 'items' list"), ("baditem", "is not a JSON object")],
)
def test_malformed_page_is_terminal_naming_date_and_page(
    kind: str, detail: str, sleeps: list[float]
) -> None:
    with mock_server() as server, client_for(server) as client:
        server.api.inject(kind, times=None, page=2)
        with pytest.raises(DataError) as caught:
            fetch_all(client)
    assert "date 2025-03-03 page 2" in str(caught.value)
    assert detail in str(caught.value)
    assert server.api.attempts(DAY, page=2) == 1
    assert sleeps == []


@pytest.mark.parametrize("pagination", ["pages", "cursor"])
def test_repeating_next_page_is_stopped(pagination: str, sleeps: list[float]) -> None:
    with mock_server(pagination=pagination) as server, client_for(server) as client:
        server.api.inject("loop", times=None, page=2)
        with pytest.raises(TerminalError, match="pagination loops"):
            fetch_all(client)
    assert server.api.attempts(DAY) == 2


def test_page_limit_stops_a_runaway_day(sleeps: list[float]) -> None:
    with (
        mock_server() as server,
        client_for(server, max_pages=2) as client,
        pytest.raises(TerminalError, match="API_MAX_PAGES"),
    ):
        fetch_all(client)
    assert server.api.attempts(DAY) == 2


# --- pure parsing ---------------------------------------------------------------------------


def test_items_are_kept_verbatim() -> None:
    body = (
        '{ "next_page" : "abc==",\n "items": [ {"company_id": "C1" , "events": 1.50e2,\n'
        '"ts":"2025-03-03T10:00:00Z", "note":"caf\\u00e9 \u00e9"} ,{"b":2,"a":1} ] }'
    ).encode()
    lines, next_page = parse_page(body, DAY, 1)
    assert lines == [
        '{"company_id": "C1" , "events": 1.50e2, "ts":"2025-03-03T10:00:00Z", '
        '"note":"caf\\u00e9 \u00e9"}'.encode(),
        b'{"b":2,"a":1}',
    ]
    assert next_page == "abc=="


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "empty"),
        (b"<html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"items": {"a": 1}}', "'items' is not a list"),
        (b'{"items": [], "next_page": true}', "next_page must be"),
        (b'{"items": [], "next_page": ""}', "next_page must be"),
        (b'{"items": [], "next_page": [2]}', "next_page must be"),
        (b'{"items": [{"a": 1}]} trailing', "not JSON"),
        (b'{"items": [{"a": 1},]}', "not JSON"),
        (b'{"items": [{"a": 1}', "not JSON"),
        (b'{"items": ["x"]}', "item 1 is not a JSON object"),
        (b'\xff\xfe{"items": []}', "not UTF-8"),
    ],
)
def test_malformed_bodies_are_data_errors(body: bytes, detail: str) -> None:
    with pytest.raises(DataError) as caught:
        parse_page(body, DAY, 4)
    assert "date 2025-03-03 page 4" in str(caught.value)
    assert detail in str(caught.value)


def test_bodies_that_are_not_json_are_told_apart_from_pages_of_the_wrong_shape() -> None:
    for body in (b"", b" \n", b"<html>", b'{"items": [{"a": 1}', b'\xff\xfe{"items": []}'):
        with pytest.raises(PageNotJson):
            parse_page(body, DAY, 1)
    for body in (b"[1, 2]", b'{"items": {"a": 1}}', b'{"items": [1]}', b'{"next_page": 2}'):
        with pytest.raises(DataError) as caught:
            parse_page(body, DAY, 1)
        assert not isinstance(caught.value, PageNotJson)


def test_a_utf8_bom_is_not_part_of_the_page() -> None:
    assert parse_page(b'\xef\xbb\xbf{"items": [{"a":1}]}', DAY, 1) == ([b'{"a":1}'], None)


def test_empty_and_numbered_pages() -> None:
    assert parse_page(b'{"items": []}', DAY, 1) == ([], None)
    assert parse_page(b'{"items": [], "next_page": 3, "extra": {"x": [1]}}', DAY, 1) == ([], 3)


def test_parse_retry_after() -> None:
    now = datetime(2025, 3, 3, 12, 0, tzinfo=UTC).timestamp()
    in_30s = format_datetime(datetime(2025, 3, 3, 12, 0, 30, tzinfo=UTC), usegmt=True)
    past = format_datetime(datetime(2025, 3, 3, 11, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after(" 2.5 ", now) == 2.5
    assert parse_retry_after(in_30s, now) == 30.0
    for value in (None, "", "0", "-3", "soon", past, "nan"):
        assert parse_retry_after(value, now) is None


def test_config_hides_the_key_from_repr() -> None:
    config = api_client.ApiConfig(url="http://127.0.0.1:1/usage", api_key=API_KEY)
    assert API_KEY not in repr(config)
