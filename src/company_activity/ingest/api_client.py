"""The product-usage API client: one HTTP session, one retry policy, pages streamed as they come.

Contract (docs/api_contract.md): `GET {API_URL}?date=YYYY-MM-DD&page=P&per_page=M` with the API
key in a header, answering `{"items": [...], "next_page": <page number, cursor or null>}`. The
client sends back whatever `next_page` held as the next `page`, so page numbers and opaque
cursors both work. Pages are split into verbatim items by company_activity.ingest.pages; the
retry policy is company_activity.retry's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import requests
from requests.adapters import HTTPAdapter

from company_activity.errors import TerminalError, TransientError
from company_activity.ingest.pages import FetchStats, Page, parse_page
from company_activity.redact import redact, register_secret
from company_activity.retry import (
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_JITTER_SECONDS,
    RETRYABLE_STATUSES,
    GaveUp,
    RetryableHttpError,
    RetryPolicy,
    parse_retry_after,
)

if TYPE_CHECKING:
    from company_activity.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "BACKOFF_INITIAL_SECONDS",
    "BACKOFF_JITTER_SECONDS",
    "RETRYABLE_STATUSES",
    "ApiClient",
    "ApiConfig",
    "FetchStats",
    "Page",
    "RetryableHttpError",
    "parse_page",
    "parse_retry_after",
]

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
        self._retry = RetryPolicy(
            max_attempts=config.max_attempts,
            max_retry_seconds=config.max_retry_seconds,
            max_backoff_seconds=config.max_backoff_seconds,
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

        def on_retry(error: TransientError, wait: float, attempt: int) -> None:
            stats.retries += 1
            log.warning(
                "date %s page %d: %s; retrying in %.1f s (attempt %d of %d)",
                day,
                number,
                error,
                wait,
                attempt,
                cfg.max_attempts,
            )

        try:
            return self._retry.run(
                lambda: self._get_once(day, request, number), sleep=_nap, on_retry=on_retry
            )
        except GaveUp as exc:
            raise TransientError(
                f"gave up on date {day} page {number} after {exc.attempts} attempt(s) "
                f"(last: {exc.last}). The API at {self._endpoint} may be down or throttling; "
                "re-run the date later."
            ) from None

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
