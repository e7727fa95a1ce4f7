"""A local product-usage API for demos, tests and benchmarks (stdlib HTTP server, loopback only).

It serves the contract of docs/api_contract.md from mock.data's deterministic generator:
`GET /usage?date=YYYY-MM-DD&page=P&per_page=M` with the API key in a header. Page P covers the
companies with index (P-1)*M .. P*M-1 (so a page may hold fewer than M records); in cursor mode
`next_page` is an opaque string instead of a number.

Faults, on demand:
- by rate (every request or item rolls the dice): `429`, `500`, `502`, `503`, `504` (answered
  instead of the page), `slow` (answers after a delay), `truncate` (the body is cut half way and
  the connection closed), and data faults inside valid pages: `duplicate` (an item sent twice),
  `case` (an id in upper case), `malformed` (an item with a missing or unusable field). Data
  faults are deterministic per (seed, date, page), so reruns see the same data.
- scripted (tests): `inject(kind, times=..., day=..., page=...)` makes the next matching requests
  fail with one of the rate kinds or with a broken page: `badjson` (not JSON), `noitems` (no
  items list), `baditem` (an item that is not an object), `loop` (next_page repeats the page),
  or answer `empty` (HTTP 200, no records: a broken upstream that looks like a quiet day).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from company_activity.errors import ConfigError
from company_activity.mock import data as mock_data
from company_activity.mock.faults import (
    SCRIPTED_FAULTS,
    STATUS_FAULTS,
    TRANSPORT_FAULTS,
    ScriptedFault,
    data_faults,
)
from company_activity.redact import redact

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usage"
DEFAULT_PER_PAGE = 1000
MAX_PER_PAGE = 10_000
PAGINATIONS = ("pages", "cursor")

__all__ = [
    "DEFAULT_PATH",
    "PAGINATIONS",
    "MockApi",
    "MockApiConfig",
    "MockApiServer",
    "RequestRecord",
]


@dataclass
class MockApiConfig:
    """What the mock serves and how it misbehaves."""

    seed: int = 42
    companies: int = 50
    api_key: str = field(default="mock-api-key", repr=False)
    auth_header: str = "Authorization"
    pagination: str = "pages"
    path: str = DEFAULT_PATH
    fault_rates: dict[str, float] = field(default_factory=dict)
    retry_after: str | None = "1"  # sent with 429s (seconds or an HTTP date); None: no header
    slow_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.pagination not in PAGINATIONS:
            raise ConfigError(f"pagination must be one of {', '.join(PAGINATIONS)}")
        if self.companies < 0:
            raise ConfigError("the number of companies must not be negative")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the mock saw it (for tests counting attempts)."""

    day: str | None
    page: int | None
    status: int
    fault: str | None


class _Reply(Exception):
    """An early answer (an error status) while handling a request."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class MockApi:
    """The request handling and fault state, apart from the socket server."""

    def __init__(self, config: MockApiConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._scripted: list[ScriptedFault] = []
        self._log: list[RequestRecord] = []
        self._rng = random.Random(f"{config.seed}:transport")
        expected = config.api_key
        if config.auth_header.lower() == "authorization":
            expected = f"Bearer {expected}"
        self._expected_auth = expected

    # -- test hooks -------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        times: int | None = 1,
        day: date | None = None,
        page: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Make the next matching request(s) fail with this fault."""
        if kind not in SCRIPTED_FAULTS:
            raise ConfigError(f"unknown fault {kind!r}; use one of {', '.join(SCRIPTED_FAULTS)}")
        with self._lock:
            self._scripted.append(ScriptedFault(kind, times, day, page, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._scripted.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def attempts(self, day: date | None = None, page: int | None = None) -> int:
        """How many requests were made for that day (and page)."""
        return sum(
            1
            for r in self.requests
            if (day is None or r.day == day.isoformat()) and (page is None or r.page == page)
        )

    # -- serving ----------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        day_text: str | None = None
        position: int | None = None
        fault: str | None = None
        try:
            url = urlsplit(handler.path)
            if url.path.rstrip("/") != self.config.path.rstrip("/"):
                raise _Reply(
                    404, f"no such endpoint {url.path}; the usage API is at {self.config.path}"
                )
            if handler.headers.get(self.config.auth_header) != self._expected_auth:
                raise _Reply(401, "missing or wrong API key", (("WWW-Authenticate", "Bearer"),))
            query = parse_qs(url.query)
            day_text = _one(query, "date")
            day = _parse_day(day_text)
            per_page = _per_page(_one(query, "per_page"))
            start, position = self._locate(day, _one(query, "page"), per_page)
            fault, retry_after = self._pick_fault(day, position)
            body, truncate = self._answer(fault, retry_after, day, start, position, per_page)
            # Logged before the answer leaves, like the error answers: a client's next request
            # can then never stand before this one in the log.
            self._record(day_text, position, 200, fault)
            _send(handler, 200, body, truncate=truncate)
        except _Reply as reply:
            self._record(day_text, position, reply.status, fault)
            body = json.dumps({"error": reply.message}).encode()
            _send(handler, reply.status, body, reply.headers)

    def _record(self, day: str | None, page: int | None, status: int, fault: str | None) -> None:
        with self._lock:
            self._log.append(RequestRecord(day, page, status, fault))

    def _locate(self, day: date, page: str | None, per_page: int) -> tuple[int, int]:
        """(first company index, page position) for the page parameter."""
        if page is None or page == "1":
            return 0, 1
        if self.config.pagination == "pages":
            if not page.isdigit() or int(page) < 1:
                raise _Reply(400, f"page must be a whole number from 1, got {page[:40]!r}")
            return (int(page) - 1) * per_page, int(page)
        try:
            text = base64.urlsafe_b64decode(page.encode("ascii")).decode("ascii")
            cursor_day, start, position = text.split("|")
            if cursor_day != day.isoformat():
                raise ValueError("cursor of another date")
            return int(start), int(position)
        except (ValueError, UnicodeError, binascii.Error):
            raise _Reply(400, "invalid cursor; send back next_page exactly as received") from None

    def _next_page(self, day: date, start: int, position: int, per_page: int) -> int | str | None:
        if start + per_page >= self.config.companies:
            return None
        if self.config.pagination == "pages":
            return position + 1
        token = f"{day.isoformat()}|{start + per_page}|{position + 1}"
        return base64.urlsafe_b64encode(token.encode("ascii")).decode("ascii")

    def _pick_fault(self, day: date, position: int) -> tuple[str | None, str | None]:
        """The fault for this request, if any, and a Retry-After that a script set for it."""
        with self._lock:
            for rule in self._scripted:
                if (rule.day is None or rule.day == day) and (
                    rule.page is None or rule.page == position
                ):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self._scripted.remove(rule)
                    return rule.kind, rule.retry_after
            for kind in TRANSPORT_FAULTS:
                rate = self.config.fault_rates.get(kind, 0.0)
                if rate and self._rng.random() < rate:
                    return kind, None
        return None, None

    def _answer(
        self,
        fault: str | None,
        retry_after: str | None,
        day: date,
        start: int,
        position: int,
        per_page: int,
    ) -> tuple[bytes, bool]:
        """The 200 answer's body and whether to cut it short; a status fault raises _Reply."""
        cfg = self.config
        if fault in STATUS_FAULTS:
            status = int(fault)  # type: ignore[arg-type]
            if status == 429 and retry_after is None:
                retry_after = cfg.retry_after
            headers = (("Retry-After", retry_after),) if retry_after is not None else ()
            raise _Reply(status, f"injected fault {fault}", headers)
        if fault == "slow":
            time.sleep(cfg.slow_seconds)
        if fault == "badjson":
            return b"<html><body>Service temporarily unavailable</body></html>", False
        if fault == "noitems":
            return b'{"data": [], "next_page": null}', False
        if fault == "empty":
            return b'{"items": [], "next_page": null}', False
        lines = mock_data.usage_lines(cfg.seed, cfg.companies, day, start, start + per_page)
        lines = data_faults(lines, cfg.fault_rates, cfg.seed, day, start)
        if fault == "baditem":
            lines.append(b"42")
        next_page = self._next_page(day, start, position, per_page)
        if fault == "loop":
            next_page = 1 if position == 1 else self._same_page(day, start, position, per_page)
        body = (
            b'{"items":['
            + b",".join(lines)
            + b'],"next_page":'
            + json.dumps(next_page).encode()
            + b"}"
        )
        return body, fault == "truncate"

    def _same_page(self, day: date, start: int, position: int, per_page: int) -> int | str:
        if self.config.pagination == "pages":
            return position
        token = f"{day.isoformat()}|{start}|{position}"
        return base64.urlsafe_b64encode(token.encode("ascii")).decode("ascii")


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _parse_day(text: str | None) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        raise _Reply(400, "date must be given as YYYY-MM-DD") from None


def _per_page(text: str | None) -> int:
    if text is None:
        return DEFAULT_PER_PAGE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PER_PAGE:
        raise _Reply(400, f"per_page must be a whole number from 1 to {MAX_PER_PAGE}")
    return int(text)


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: tuple[tuple[str, str], ...] = (),
    truncate: bool = False,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    if truncate:
        # Promise the whole body, send half, hang up: the client sees a cut-short response.
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return
    handler.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real API would
    server_version = "mock-usage-api"
    timeout = 30  # idle keep-alive connections close eventually
    disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms stalls

    def do_GET(self) -> None:
        self.server.api.handle(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        # The key travels in a header, but a client may also put one in the URL.
        log.debug("mock-api %s %s", self.address_string(), redact(format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: MockApi


class MockApiServer:
    """The mock API on a loopback port (0: any free port); start() serves in a thread."""

    def __init__(self, config: MockApiConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        if not _is_loopback(host):
            raise ConfigError(f"the mock API serves on loopback only; {host!r} is not loopback")
        self.api = MockApi(config)
        self._server = _Server((host, port), _Handler)
        self._server.api = self.api
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.api.config.path}"

    def start(self) -> MockApiServer:
        # A short poll interval makes stop() quick (tests start and stop many servers).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="mock-api", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until shutdown() (or KeyboardInterrupt)."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MockApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
