"""The product-usage API client: one HTTP session, one retry policy, pages streamed as they come.

Contract (docs/api_contract.md): `GET {API_URL}?date=YYYY-MM-DD&page=P&per_page=M` with the API
key in a header, answering `{"items": [...], "next_page": <page number, cursor or null>}`. The
client sends back whatever `next_page` held as the next `page`, so page numbers and opaque
cursors both work. Pages are split into verbatim items by company_activity.ingest.pages; each
request goes through company_activity.http (a total deadline, no cross-host redirects, bodies
checked whole) under company_activity.retry's policy. A page is fetched and parsed in one
attempt, so a 200 whose body is not JSON (a proxy's maintenance page) is retried like a 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from company_activity import http
from company_activity.errors import TerminalError, TransientError
from company_activity.ingest.pages import FetchStats, Page, PageNotJson, parse_page
from company_activity.redact import redact, register_secret
from company_activity.retry import (
    RETRYABLE_STATUSES,
    GaveUp,
    NotBefore,
    RetryableHttpError,
    RetryPolicy,
    parse_retry_after,
)

if TYPE_CHECKING:
    from company_activity.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ApiClient", "ApiConfig"]

FIRST_PAGE = 1

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
    deadline_seconds: float = http.DEFAULT_DEADLINE_SECONDS
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
            deadline_seconds=settings.http_deadline_seconds,
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
        self._session = http.new_session(pool_size)
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
        self._not_before = NotBefore()  # Retry-After holds every thread of this client

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
            lines, next_page = self._get(day, request, number, stats)
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

    def _get(
        self, day: date, request: int | str, number: int, stats: FetchStats
    ) -> tuple[list[bytes], int | str | None]:
        """One page, fetched and parsed, retried on transient errors within the bounds."""
        cfg = self.config
        holds: list[float] = []

        def on_retry(error: TransientError, wait: float, attempt: int) -> None:
            stats.retries += 1
            hold = getattr(error, "hold", None)
            if hold is not None:
                holds.append(hold)
            log.warning(
                "date %s page %d: %s; retrying in %.1f s (attempt %d of %d)",
                day,
                number,
                error,
                wait,
                attempt,
                cfg.max_attempts,
            )

        def nap(seconds: float) -> None:
            _nap(seconds)
            while holds:  # this thread waited its own Retry-After out
                self._not_before.release(holds.pop())

        try:
            return self._retry.run(
                lambda: self._get_once(day, request, number), sleep=nap, on_retry=on_retry
            )
        except GaveUp as exc:
            raise TransientError(self._gave_up(day, number, exc)) from None

    def _gave_up(self, day: date, number: int, exc: GaveUp) -> str:
        cfg = self.config
        head = f"gave up on date {day} page {number} after {exc.attempts} attempt(s) "
        head += f"(last: {exc.last})"
        when = _utc_text(exc.come_back_at) if exc.come_back_at else None
        if exc.refused_wait is not None and when:
            bound = (
                f"API_MAX_BACKOFF_SECONDS ({cfg.max_backoff_seconds:g} s)"
                if exc.refused_wait > cfg.max_backoff_seconds
                else f"what is left of API_MAX_RETRY_SECONDS ({cfg.max_retry_seconds:g} s)"
            )
            wait = round(exc.refused_wait, 1)
            return (
                f"{head}: the API asked to come back in {wait:g} s, at {when}, "
                f"later than {bound} allows, so no request was sent before then. Re-run the "
                f"date after {when}."
            )
        later = f" (the API asked to come back at {when})" if when else ""
        return (
            f"{head}. The API at {self._endpoint} may be down or throttling; re-run the date "
            f"later{later}."
        )

    def _get_once(
        self, day: date, request: int | str, number: int
    ) -> tuple[list[bytes], int | str | None]:
        """One request and its parse. Transient errors say what happened; _get adds where."""
        cfg = self.config
        where = f"date {day} page {number}"
        params: dict[str, str | int] = {
            "date": day.isoformat(),
            "page": request,
            "per_page": cfg.page_size,
        }
        self._not_before.wait(_nap)
        try:
            answer = http.call(
                self._session,
                "GET",
                cfg.url,
                params=params,
                timeout=(cfg.connect_timeout, cfg.read_timeout),
                deadline=cfg.deadline_seconds,
            )
        except http.RedirectRefused as exc:
            raise TerminalError(f"{where}: {exc} (API_URL)") from None
        status = answer.status
        if status in RETRYABLE_STATUSES:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            told = f" with Retry-After {round(retry_after, 1):g} s" if retry_after else ""
            error = RetryableHttpError(f"HTTP {status}{told}", status, retry_after)
            if retry_after:
                error.hold = self._not_before.hold(retry_after)
            raise error
        if status >= 300:
            hint = _TERMINAL_HINTS.get(status, f"check API_URL ({self._endpoint}) and the API")
            shown = http.preview(answer.body)
            detail = f" (the API said: {shown})" if shown else ""
            raise TerminalError(f"{where}: HTTP {status}: {hint}{detail}")
        try:
            return parse_page(answer.body, day, number)
        except PageNotJson:
            shown = http.preview(answer.body) or "(empty)"
            raise TransientError(
                f"HTTP {status} but the body is not JSON (a proxy or maintenance page, or cut "
                f"short?), starting: {shown}"
            ) from None


def _utc_text(when: datetime) -> str:
    """A UTC time to the second, rounded up: 'come back at' is never too early."""
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _page_key(value: int | str) -> str:
    # What goes on the wire: next_page 2 and "2" ask for the same page.
    return str(value)
