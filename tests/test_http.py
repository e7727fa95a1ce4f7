"""The shared HTTP layer (company_activity.http) against real local servers (tests/scripted_api.py):
a total deadline on every call, for the API client and the webhook; redirects that never take
the key to another host; bodies cut short or undecodable are transient.

Deadlines here are about a second, so these tests take a few seconds each, by design: the
servers really drip.
"""

from __future__ import annotations

import gzip
import logging
import time
from datetime import date
from pathlib import Path

import pytest

from company_activity import http
from company_activity.errors import TerminalError, TransientError
from company_activity.ingest import api_client
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.ingest.pages import FetchStats
from company_activity.pipeline import notify
from company_activity.redact import register_secret
from tests.scripted_api import Reply, scripted, self_signed

KEY = "drip-test-key-4f1c2b9e"
DAY = date(2025, 11, 23)
ITEM = b'{"company_id":"c100","active_users":5,"events":40,"ts":"2025-11-23T09:00:00Z"}'
PAGE = b'{"items":[' + ITEM + b'],"next_page":null}'
JSON = {"Content-Type": "application/json"}
CHUNKED = b"%x\r\n%s\r\n" % (len(PAGE), PAGE)  # one chunk, no terminating 0-size chunk
DEADLINE = 1.0
DRIP = 0.4  # seconds between bytes: each read succeeds well within the 5 s read timeout
SLACK = 1.5  # how late after the deadline a call may end (thread wake-up, a loaded machine)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(api_client, "sleep", waited.append)
    return waited


def client(url: str, **options: object) -> ApiClient:
    settings: dict[str, object] = {
        "url": url,
        "api_key": KEY,
        "auth_header": "X-Api-Key",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "deadline_seconds": DEADLINE,
        "max_attempts": 2,
    }
    settings.update(options)
    return ApiClient(ApiConfig(**settings))  # type: ignore[arg-type]


def fetch(api: ApiClient) -> tuple[list[bytes], FetchStats]:
    stats = FetchStats()
    with api:
        lines = [line for page in api.pages(DAY, stats) for line in page.lines]
    return lines, stats


def dripping(where: str) -> Reply:
    if where == "head":
        return Reply(200, JSON, PAGE, drip_head=DRIP)
    return Reply(200, JSON, PAGE, drip_body=DRIP)


# --- deadlines ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["head", "body"])
def test_api_page_dripping_ends_at_the_deadline_and_is_retried_within_the_bounds(
    where: str, sleeps: list[float]
) -> None:
    with scripted({"*": [dripping(where)]}) as server:
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            fetch(client(server.url()))
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "gave up on date 2025-11-23 page 1 after 2 attempt(s)" in message
    assert f"within the {DEADLINE:g} s deadline (HTTP_DEADLINE_SECONDS)" in message
    assert len(server.requests) == 2  # API_MAX_ATTEMPTS, each ended by its deadline
    assert len(sleeps) == 1
    assert 2 * DEADLINE <= elapsed <= 2 * DEADLINE + 2 * SLACK


def test_api_page_that_dripped_once_arrives_on_the_retry(sleeps: list[float]) -> None:
    with scripted({"*": [dripping("body"), Reply(200, JSON, PAGE)]}) as server:
        lines, stats = fetch(client(server.url()))
    assert lines == [ITEM]
    assert stats.retries == 1 and len(server.requests) == 2


@pytest.mark.parametrize("where", ["head", "body"])
def test_https_page_dripping_ends_at_the_deadline(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, cert = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trust the test's own certificate
    with scripted({"*": [dripping(where), Reply(200, JSON, PAGE)]}, tls) as server:
        assert server.url().startswith("https://")
        started = time.monotonic()
        lines, stats = fetch(client(server.url()))
        elapsed = time.monotonic() - started
    assert lines == [ITEM] and stats.retries == 1
    assert DEADLINE <= elapsed <= DEADLINE + SLACK


@pytest.mark.parametrize("where", ["head", "body"])
def test_webhook_dripping_ends_at_the_deadline_as_a_transient_failure(where: str) -> None:
    with scripted({"*": [dripping(where)]}) as server:
        started = time.monotonic()
        with pytest.raises(http.DeadlineExceeded) as caught:
            http.call(
                http.new_session(), "POST", server.url("/hook"), data=b"{}", deadline=DEADLINE
            )
        elapsed = time.monotonic() - started
    assert isinstance(caught.value, TransientError)
    assert DEADLINE <= elapsed <= DEADLINE + SLACK
    assert server.requests[0].method == "POST"


@pytest.mark.parametrize("where", ["head", "body"])
def test_notify_send_gives_up_on_a_dripping_webhook_at_the_deadline(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = notify.RunMessage("daily", "run-d", "failed", "2025-11-23", "2025-11-23")
    with scripted({"*": [dripping(where)]}) as server:
        url = server.url("/workflows/abc/triggers/manual?sig=drip-webhook-signature")
        started = time.monotonic()
        delivered = notify.send(message, url, deadline=DEADLINE, attempts=1)
        elapsed = time.monotonic() - started
    assert delivered is False
    assert DEADLINE <= elapsed <= DEADLINE + SLACK
    assert "deadline" in caplog.text and "the run's own status stands" in caplog.text
    assert "drip-webhook-signature" not in caplog.text and "/workflows/" not in caplog.text


# --- redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("auth_header", ["X-Api-Key", "Authorization"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_redirect_to_another_host_is_refused_and_the_key_never_leaves(
    host: str, auth_header: str
) -> None:
    with scripted({"*": [Reply(200, JSON, PAGE)]}) as other:
        target = other.url("/usage").replace("127.0.0.1", host) + "?date=2025-11-23&page=1"
        with (
            scripted({"*": [Reply(302, {"Location": target})]}) as api,
            pytest.raises(TerminalError) as caught,
        ):
            fetch(client(api.url(), auth_header=auth_header))
    port = other.origin.rsplit(":", 1)[1]
    assert f"redirected to another host, http://{host}:{port}" in str(caught.value)
    assert "API_URL" in str(caught.value)
    assert other.requests == []  # the second server never saw the key, nor anything else
    assert len(api.requests) == 1 and KEY in api.requests[0].headers[auth_header.lower()]


def test_same_host_redirect_is_followed_with_the_key() -> None:
    script = {
        "/old/usage": [Reply(308, {"Location": "/usage?date=2025-11-23&page=1&per_page=1000"})],
        "/usage": [Reply(200, JSON, PAGE)],
    }
    with scripted(script) as api:
        lines, _ = fetch(client(api.url("/old/usage")))
    assert lines == [ITEM]
    assert [seen.path for seen in api.requests] == ["/old/usage", "/usage"]
    assert all(seen.headers["x-api-key"] == KEY for seen in api.requests)


def test_redirect_loops_end() -> None:
    with (
        scripted({"*": [Reply(302, {"Location": "/usage"})]}) as api,
        pytest.raises(TerminalError, match="redirected more than 5 times"),
    ):
        fetch(client(api.url()))
    assert len(api.requests) == http.MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("origin", "target", "allowed"),
    [
        ("https://api.example.com/v1", "https://api.example.com/v2?x=1", True),
        ("https://api.example.com/v1", "https://API.example.com:443/v2", True),
        ("http://api.example.com/v1", "https://api.example.com/v1", True),
        ("https://api.example.com/v1", "http://api.example.com/v1", False),
        ("https://api.example.com/v1", "https://evil.example.net/v1", False),
        ("https://api.example.com/v1", "https://api.example.com:8443/v1", False),
        ("http://127.0.0.1:8080/usage", "http://127.0.0.1:8081/usage", False),
        ("https://api.example.com/v1", "https://api.example.com.evil.net/v1", False),
        ("https://api.example.com/v1", "https://user@evil.net/v1", False),
    ],
)
def test_redirect_allowed(origin: str, target: str, allowed: bool) -> None:
    assert http.redirect_allowed(origin, target) is allowed


# --- bodies ---------------------------------------------------------------------------------


def test_gzipped_page_is_decoded() -> None:
    with scripted({"*": [Reply(200, JSON, PAGE, gzip=True)]}) as api:
        lines, stats = fetch(client(api.url()))
    assert lines == [ITEM] and stats.retries == 0
    assert "gzip" in api.requests[0].headers["accept-encoding"]


def test_chunked_page_is_read_whole() -> None:
    chunked = {**JSON, "Transfer-Encoding": "chunked"}
    with scripted({"*": [Reply(200, chunked, CHUNKED + b"0\r\n\r\n")]}) as api:
        lines, stats = fetch(client(api.url()))
    assert lines == [ITEM] and stats.retries == 0


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        # Content-Length promises more than arrives
        (Reply(200, JSON, PAGE, cut=20), "cut short"),
        (Reply(200, JSON, PAGE, gzip=True, cut=30), "cut short"),
        # chunked: the connection closes before the last (empty) chunk
        (
            Reply(200, {**JSON, "Transfer-Encoding": "chunked"}, CHUNKED, cut=len(CHUNKED)),
            "cut short",
        ),
        # a complete HTTP body holding a gzip stream that stops half way
        (
            Reply(200, {**JSON, "Content-Encoding": "gzip"}, gzip.compress(PAGE)[:-12]),
            "ends early",
        ),
        (
            Reply(200, {**JSON, "Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00garbage-bytes"),
            "does not decompress",
        ),
    ],
)
def test_body_cut_short_or_undecodable_is_transient_and_retried(
    bad: Reply, detail: str, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with scripted({"*": [bad, Reply(200, JSON, PAGE, gzip=True)]}) as api:
        lines, stats = fetch(client(api.url()))
    assert lines == [ITEM]
    assert stats.retries == 1 and len(api.requests) == 2 and len(sleeps) == 1
    assert detail in caplog.text


def test_body_in_an_encoding_not_asked_for_is_terminal() -> None:
    with (
        scripted({"*": [Reply(200, {**JSON, "Content-Encoding": "br"}, b"xx")]}) as api,
        pytest.raises(TerminalError, match="Content-Encoding 'br'"),
    ):
        fetch(client(api.url()))


def test_preview_is_one_redacted_line() -> None:
    body = b"<html>\n  <p>key: " + KEY.encode() + b"</p>\n" + b"x" * 500
    register_secret(KEY)
    shown = http.preview(body, 40)
    assert "\n" not in shown and KEY not in shown and shown.endswith("...")
    assert http.host_of("https://u:p@hooks.example.com:8443/p/a/t/h?sig=s") == (
        "https://hooks.example.com:8443"
    )
