"""The package's HTTP calls: one kind of session, and each call bounded by a total deadline.

`timeout=` in requests bounds each socket operation, not the call: a server that sends one
byte every few seconds keeps a plain call alive for ever. call() gives every exchange a
wall-clock deadline, from connecting to the last body byte, after which the call fails as a
TransientError (the caller's retry policy decides whether to try again). The API client and
the notification webhook both call through here.

Redirects are never followed blindly: a redirect to another host (or from https to http)
ends the call with a TerminalError naming the target, so headers that carry a key
(API_AUTH_HEADER) never reach a host other than the one configured.

Bodies are read whole and checked: one that ends before its Content-Length or its last chunk,
or whose gzip/deflate stream is cut short or corrupt, is a TransientError.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from urllib3.util.response import assert_header_parsing

from company_activity.errors import TerminalError, TransientError
from company_activity.http_deadline import DeadlineAdapter, Watch
from company_activity.redact import redact

# A sane bound for one exchange (connect, send, headers, whole body); HTTP_DEADLINE_SECONDS.
DEFAULT_DEADLINE_SECONDS = 120.0
DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, per-read seconds (requests' own timeouts)
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# We decode these ourselves, to notice a stream that is cut short (zlib's eof flag).
ACCEPT_ENCODING = "gzip, deflate"
PREVIEW_CHARS = 200  # how much of a body a message may quote


class _HeaderWarningFilter(logging.Filter):
    """Drops urllib3's "Failed to parse headers" warning: _exchange fails such an answer
    itself, and the warning carries a traceback and the URL with its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to parse headers")


logging.getLogger("urllib3.connection").addFilter(_HeaderWarningFilter())


class DeadlineExceeded(TransientError):
    """The exchange did not finish within its deadline."""


class RedirectRefused(TerminalError):
    """A redirect would take the request (and its headers) to another host."""


@dataclass(frozen=True)
class Answer:
    """A finished exchange: status, headers (case-insensitive), the decoded body, final URL."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def new_session(pool_size: int = 10) -> requests.Session:
    """A session whose connections honour call()'s deadlines; requests' own retries off."""
    session = requests.Session()
    # tenacity (company_activity.retry) is the one retry policy: urllib3 must not retry.
    adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept-Encoding"] = ACCEPT_ENCODING
    return session


def call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    deadline: float = DEFAULT_DEADLINE_SECONDS,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    params: Mapping[str, str | int] | None = None,
    data: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """One HTTP exchange, finished within `deadline` seconds or failed.

    Same-host redirects are followed (at most MAX_REDIRECTS, within the same deadline).
    Raises DeadlineExceeded or TransientError (connection failed, body cut short or not
    decodable), RedirectRefused, or TerminalError (a URL requests cannot use). Messages name
    the host only, never the URL's path or query (webhook URLs carry their key there).
    """
    connect, read = timeout
    watch = Watch(deadline)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            answer = _exchange(
                session, method, url, watch, (connect, min(read, deadline)), params, data, headers
            )
            target = _redirect_target(answer)
            if target is None:
                return answer
            _check_redirect(url, target)
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, data = "GET", None  # as browsers do (RFC 9110 section 15.4)
            url, params = target, None  # the Location carries its own query
        raise TerminalError(
            f"{host_of(url)} redirected more than {MAX_REDIRECTS} times; check the URL"
        )
    finally:
        watch.close()


def _exchange(
    session: requests.Session,
    method: str,
    url: str,
    watch: Watch,
    timeout: tuple[float, float],
    params: Mapping[str, str | int] | None,
    data: bytes | str | None,
    headers: Mapping[str, str] | None,
) -> Answer:
    where = host_of(url)
    response: requests.Response | None = None
    try:
        with watch.active():
            response = session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,  # the body is read below, within the deadline
            )
            _check_headers(response, where)
            raw = response.raw.read(decode_content=False)
        body = _decode(raw, response.headers.get("Content-Encoding", ""), where)
        return Answer(response.status_code, response.headers, body, url)
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidHeader,
    ) as exc:
        raise TerminalError(f"cannot call {where}: {type(exc).__name__}") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if response is not None:
            response.close()  # an unfinished connection is not reused
        if watch.expired:
            raise DeadlineExceeded(
                f"{where} did not finish answering within the {watch.seconds:g} s deadline "
                "(HTTP_DEADLINE_SECONDS)"
            ) from None
        if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
            raise TransientError(f"{where} did not answer in time") from None
        raise TransientError(
            f"connection to {where} failed or the response was cut short ({type(exc).__name__})"
        ) from None


def _check_headers(response: requests.Response, where: str) -> None:
    """A head that ends inside a header line (the connection closed mid-headers) is transient:
    http.client would hand on what it read as a complete answer with an empty body."""
    head = getattr(getattr(response.raw, "_original_response", None), "msg", None)
    if head is None:
        return
    try:
        assert_header_parsing(head)
    except (urllib3.exceptions.HeaderParsingError, TypeError):
        response.close()
        raise TransientError(
            f"the response headers were cut short or malformed (from {where})"
        ) from None


def _decode(raw: bytes, encoding: str, where: str) -> bytes:
    """The body with its Content-Encoding undone; a stream cut short or corrupt is transient."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    body = raw
    for coding in reversed(codings):  # the last applied is undone first
        if coding in ("identity", ""):
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise TerminalError(
                f"{where} sent a body in Content-Encoding {coding!r}, which was not asked for "
                f"(Accept-Encoding: {ACCEPT_ENCODING})"
            )
        body = _inflate(body, coding, where)
    return body


def _inflate(data: bytes, coding: str, where: str) -> bytes:
    # gzip: wbits 16+MAX_WBITS. deflate is meant to be zlib-wrapped, but some servers send a
    # bare deflate stream (RFC 9110 section 8.4.1.2 notes it): try both, as urllib3 does.
    attempts = (16 + zlib.MAX_WBITS,) if coding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data) + inflater.flush()
        except zlib.error:
            continue
        if inflater.eof:
            return out
        raise TransientError(f"the {coding} body from {where} ends early (cut short in transit)")
    raise TransientError(f"the {coding} body from {where} does not decompress (corrupt)")


def _redirect_target(answer: Answer) -> str | None:
    location = answer.headers.get("Location")
    if answer.status not in REDIRECT_STATUSES or not location:
        return None
    return urljoin(answer.url, location)


def _check_redirect(origin: str, target: str) -> None:
    if not redirect_allowed(origin, target):
        raise RedirectRefused(
            f"{host_of(origin)} redirected to another host, {host_of(target)}; requests are "
            f"never sent to a host other than the configured one (its key would go along). "
            f"If {host_of(target)} is the right host, configure its URL instead."
        )


def redirect_allowed(origin: str, target: str) -> bool:
    """Whether a redirect from `origin` to `target` stays on the same host.

    Same host name and port and the same scheme, or an upgrade from http to https on the same
    host name. Anything else (another host or port, https to http) is refused.
    """
    a, b = urlsplit(origin), urlsplit(target)
    try:
        a_port, b_port = a.port, b.port
    except ValueError:
        return False
    if not a.hostname or (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    if a.scheme == b.scheme:
        return _effective_port(a.scheme, a_port) == _effective_port(b.scheme, b_port)
    return a.scheme == "http" and b.scheme == "https"


def _effective_port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else {"http": 80, "https": 443}.get(scheme)


def host_of(url: str) -> str:
    """Scheme, host and port of a URL, for messages: never its path, query or credentials."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return redact(f"{parts.scheme}://{host}{port}")


def preview(body: bytes, limit: int = PREVIEW_CHARS) -> str:
    """The start of a body as one line of text, redacted, for a message."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return redact(text)
