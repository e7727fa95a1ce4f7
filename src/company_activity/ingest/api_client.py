"""The product-usage API client: one HTTP session, one retry policy, pages streamed as they come.

Contract (docs/api_contract.md): `GET {API_URL}?date=YYYY-MM-DD&page=P&per_page=M` with the API
key in a header, answering `{"items": [...], "next_page": <page number, cursor or null>}`. The
client sends back whatever `next_page` held as the next `page`, so page numbers and opaque
cursors both work.

Each item is kept verbatim: the exact text the API sent for it (line breaks inside an item
become spaces so that it fits on one NDJSON line), so the raw zone can always show the original.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from company_activity.errors import DataError, TerminalError, TransientError
from company_activity.redact import redact, register_secret

if TYPE_CHECKING:
    from company_activity.settings import Settings

log = logging.getLogger(__name__)

# Statuses worth retrying; any other 4xx/5xx is terminal at once.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Exponential backoff: 1 s, 2 s, 4 s, ... plus up to 1 s of jitter, capped by
# API_MAX_BACKOFF_SECONDS (which also caps Retry-After).
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_JITTER_SECONDS = 1.0
FIRST_PAGE = 1
# How much of an error response's body a message may quote.
ERROR_BODY_PREVIEW_CHARS = 200

_TERMINAL_HINTS = {
    400: "the API rejected the request; check the date and API_PAGE_SIZE",
    401: "the API rejected the key; check API_KEY (and API_AUTH_HEADER)",
    403: "the API key is not allowed to read usage; check API_KEY and its permissions",
    404: "no such endpoint; check API_URL",
    405: "the endpoint does not accept GET; check API_URL",
    410: "the endpoint is gone; check API_URL",
    422: "the API rejected the request parameters; check the date and API_PAGE_SIZE",
}


def sleep(seconds: float) -> None:
    """Wait between attempts. Tests replace this module attribute to skip real waits."""
    time.sleep(seconds)


def _nap(seconds: float) -> None:
    sleep(seconds)  # looks `sleep` up at call time, so a patched one takes effect


@dataclass(frozen=True)
class ApiConfig:
    """What the client needs from the settings."""

    url: str
    api_key: str = field(repr=False)
    auth_header: str = "Authorization"
    page_size: int = 1000
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 6
    max_retry_seconds: float = 300.0
    max_backoff_seconds: float = 60.0
    max_pages: int = 100_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        settings.require("api_url", "api_key")
        assert settings.api_url is not None and settings.api_key is not None  # noqa: S101
        return cls(
            url=settings.api_url,
            api_key=settings.api_key,
            auth_header=settings.api_auth_header,
            page_size=settings.api_page_size,
            connect_timeout=settings.api_connect_timeout,
            read_timeout=settings.api_read_timeout,
            max_attempts=max(1, settings.api_max_attempts),
            max_retry_seconds=settings.api_max_retry_seconds,
            max_backoff_seconds=settings.api_max_backoff_seconds,
            max_pages=max(1, settings.api_max_pages),
        )


@dataclass(frozen=True)
class Page:
    """One page of a day: its 1-based position and its items as verbatim JSON lines."""

    number: int
    lines: list[bytes]


@dataclass
class FetchStats:
    """Counters for one day's fetch (pages received, retries made)."""

    pages: int = 0
    retries: int = 0


class RetryableHttpError(TransientError):
    """A status the API may answer differently next time (429, 5xx)."""

    def __init__(self, message: str, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date); None when absent,
    unreadable, zero or in the past, so that normal backoff applies."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or seconds <= 0:  # nothing to wait for
        return None
    return seconds


class ApiClient:
    """Fetches a day's usage page by page. Thread-safe: one session shared by all dates."""

    def __init__(self, config: ApiConfig, pool_size: int = 10) -> None:
        self.config = config
        register_secret(config.api_key)
        self._endpoint = redact(config.url)  # for messages: never the key
        self._session = requests.Session()
        # requests' own retries stay off: tenacity is the one retry policy.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        token = config.api_key
        if config.auth_header.lower() == "authorization":
            token = f"Bearer {token}"
        self._session.headers[config.auth_header] = token
        self._session.headers["Accept"] = "application/json"
        self._backoff = wait_exponential_jitter(
            initial=BACKOFF_INITIAL_SECONDS,
            max=config.max_backoff_seconds,
            jitter=BACKOFF_JITTER_SECONDS,
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pages(self, day: date, stats: FetchStats) -> Iterator[Page]:
        """Yield the day's pages in order, following next_page until it is null."""
        cfg = self.config
        request: int | str = FIRST_PAGE
        seen: set[str] = {_page_key(request)}
        number = 0
        while True:
            number += 1
            body = self._get(day, request, number, stats)
            lines, next_page = parse_page(body, day, number)
            stats.pages += 1
            yield Page(number, lines)
            if next_page is None:
                return
            key = _page_key(next_page)
            if key in seen:
                raise TerminalError(
                    f"the API sent next_page {str(next_page)[:80]!r} again for date {day} after "
                    f"page {number}: its pagination loops. Report it to the API's owners; the "
                    "date was not stored."
                )
            if number >= cfg.max_pages:
                raise TerminalError(
                    f"date {day} still had a next_page after {number} pages (API_MAX_PAGES). "
                    "If the day really is that large, raise API_MAX_PAGES or API_PAGE_SIZE."
                )
            seen.add(key)
            request = next_page

    def _get(self, day: date, request: int | str, number: int, stats: FetchStats) -> bytes:
        """One page, retried on transient errors within the attempt and time bounds."""
        cfg = self.config
        attempts = 0

        def before_sleep(state: RetryCallState) -> None:
            stats.retries += 1
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "date %s page %d: %s; retrying in %.1f s (attempt %d of %d)",
                day,
                number,
                error,
                wait,
                state.attempt_number + 1,
                cfg.max_attempts,
            )

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(cfg.max_attempts) | stop_before_delay(cfg.max_retry_seconds),
            wait=self._wait,
            sleep=_nap,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    return self._get_once(day, request, number)
        except TransientError as exc:
            raise TransientError(
                f"gave up on date {day} page {number} after {attempts} attempt(s) (last: {exc}). "
                f"The API at {self._endpoint} may be down or throttling; re-run the date later."
            ) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            return float(min(retry_after, self.config.max_backoff_seconds))
        return float(self._backoff(state))

    def _get_once(self, day: date, request: int | str, number: int) -> bytes:
        """One request. Transient errors say what happened; _get adds the date and page."""
        cfg = self.config
        where = f"date {day} page {number}"
        params: dict[str, str | int] = {
            "date": day.isoformat(),
            "page": request,
            "per_page": cfg.page_size,
        }
        try:
            response = self._session.get(
                cfg.url, params=params, timeout=(cfg.connect_timeout, cfg.read_timeout)
            )
        except requests.Timeout:
            raise TransientError("the API did not answer in time") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(
                f"connection failed or response cut short ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryableHttpError(f"HTTP {status}", status, retry_after)
        if status >= 300:
            hint = _TERMINAL_HINTS.get(status, f"check API_URL ({self._endpoint}) and the API")
            preview = redact(response.text[:ERROR_BODY_PREVIEW_CHARS]).strip()
            detail = f" (the API said: {preview})" if preview else ""
            raise TerminalError(f"{where}: HTTP {status}: {hint}{detail}")
        return response.content


def _page_key(value: int | str) -> str:
    # What goes on the wire: next_page 2 and "2" ask for the same page.
    return str(value)


# --- page parsing ---------------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")
_WS_CHARS = frozenset(" \t\n\r")
_ITEM_ENDS = frozenset(",]")


class _Malformed(ValueError):
    """The body is JSON (or not) but not a page of the contract."""


def parse_page(body: bytes, day: date, number: int) -> tuple[list[bytes], int | str | None]:
    """Split a page into its items' verbatim text and its next_page.

    Raises DataError naming the date and page when the body is not JSON, has no `items` list,
    an item is not an object, or next_page is neither a number, a string nor null.
    """
    where = f"date {day} page {number}"
    try:
        text = body.decode("utf-8")
        items, next_page = _scan_page(text)
    except UnicodeDecodeError:
        raise DataError(f"malformed API response for {where}: not UTF-8 text") from None
    except _Malformed as exc:
        raise DataError(
            f"malformed API response for {where}: {exc}. Nothing was stored for "
            "that date; report it to the API's owners and re-run it."
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"malformed API response for {where}: not JSON ({exc.msg} at character {exc.pos}). "
            "Nothing was stored for that date; re-run it, and report it if it persists."
        ) from None
    # Raw line breaks inside an item can only be whitespace between tokens (JSON escapes them
    # in strings), so spaces keep the item's meaning and put it on one line.
    if "\n" in text or "\r" in text:  # rare in the items of a compact page: look only then
        items = [item.replace("\r", " ").replace("\n", " ") for item in items]
    lines = [item.encode("utf-8") for item in items]
    if next_page is not None and (
        isinstance(next_page, bool)
        or not isinstance(next_page, int | str)
        or (isinstance(next_page, str) and not next_page)
    ):
        raise DataError(
            f"malformed API response for {where}: next_page must be a page number, a cursor "
            f"or null, got {str(next_page)[:80]!r}. Nothing was stored for that date."
        )
    return lines, next_page


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, chars: str) -> str:
    found = text[pos : pos + 1]
    if not found or found not in chars:
        raise json.JSONDecodeError(f"expected one of {chars!r}", text, pos)
    return found


def _scan_page(text: str) -> tuple[list[str], object]:
    """Walk the top-level object, keeping each item's source text (json parses the values)."""
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "{":
        if not text.strip():
            raise _Malformed("the body is empty")
        _DECODER.decode(text)  # raises JSONDecodeError if it is not JSON at all
        raise _Malformed("the body is not a JSON object")
    pos = _skip(text, pos + 1)
    items: list[str] | None = None
    items_bad = False
    next_page: object = None
    if text[pos : pos + 1] == "}":
        pos += 1
    else:
        while True:
            _expect(text, pos, '"')
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip(text, pos)
            _expect(text, pos, ":")
            pos = _skip(text, pos + 1)
            if key == "items" and text[pos : pos + 1] == "[":
                items, pos = _scan_items(text, pos)
                items_bad = False
            else:
                value, pos = _DECODER.raw_decode(text, pos)
                if key == "items":
                    items, items_bad = None, True
                elif key == "next_page":
                    next_page = value
            pos = _skip(text, pos)
            if _expect(text, pos, ",}") == "}":
                pos += 1
                break
            pos = _skip(text, pos + 1)
    pos = _skip(text, pos)
    if pos != len(text):
        raise json.JSONDecodeError("extra data after the page", text, pos)
    if items is None:
        raise _Malformed("'items' is not a list" if items_bad else "no 'items' list")
    return items, next_page


def _scan_items(text: str, pos: int) -> tuple[list[str], int]:
    """The items of the list at text[pos] ('['), each as its source text, and the end.

    Called for every item of every page: whitespace is looked for only where the next
    character is not the one a compact page has there.
    """
    spans: list[str] = []
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return spans, pos + 1
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        if type(value) is not dict:
            raise _Malformed(f"item {len(spans) + 1} is not a JSON object")
        spans.append(text[pos:end])
        after = text[end : end + 1]
        if after not in _ITEM_ENDS:
            end = _skip(text, end)
            after = _expect(text, end, ",]")
        if after == "]":
            return spans, end + 1
        pos = end + 1
        if text[pos : pos + 1] in _WS_CHARS:
            pos = _skip(text, pos)
