"""Wall-clock deadlines for HTTP exchanges made through requests.

A socket timeout bounds one read, so a server that drips a byte a second never trips it. Here
a timer shuts the exchange's socket down when its deadline passes; the blocked read then
returns at once and the exchange fails (company_activity.http turns that into a transient
DeadlineExceeded). The sockets are found through urllib3's connection classes: while a Watch
is active in a thread, every connection that thread uses enlists its socket with it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import BaseHTTPResponse

_LOCK = threading.Lock()
_CURRENT = threading.local()


class Watch:
    """One exchange's deadline: `seconds` from creation, then its sockets are shut down."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._closed = False
        self._enlisted: list[tuple[_Watched, socket.socket | None]] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @contextmanager
    def active(self) -> Iterator[Watch]:
        """Within the block, connections used by this thread enlist with this watch."""
        previous = getattr(_CURRENT, "watch", None)
        _CURRENT.watch = self
        try:
            yield self
        finally:
            _CURRENT.watch = previous

    def enlist(self, conn: _Watched) -> None:
        with _LOCK:
            conn.deadline_watch = self  # the connection's current owner (pools reuse them)
            self._enlisted.append((conn, conn.sock))
            if self.expired:
                _shut(conn.sock)

    def close(self) -> None:
        """The exchange is over: stop the timer and release the connections."""
        self._timer.cancel()
        with _LOCK:
            self._closed = True
            for conn, _sock in self._enlisted:
                if conn.deadline_watch is self:
                    conn.deadline_watch = None
            self._enlisted.clear()

    def _expire(self) -> None:
        with _LOCK:
            if self._closed:
                return
            self.expired = True
            for conn, sock in self._enlisted:
                if conn.deadline_watch is self:  # not handed on to another exchange
                    _shut(conn.sock or sock)


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv in the exchange's thread


class _Watched:
    """What a watched connection offers to Watch (the urllib3 connections below)."""

    sock: socket.socket | None
    deadline_watch: Watch | None = None


def _enlist(conn: _Watched) -> None:
    watch: Watch | None = getattr(_CURRENT, "watch", None)
    if watch is not None:
        watch.enlist(conn)


class _WatchedHTTPConnection(HTTPConnection, _Watched):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _enlist(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> BaseHTTPResponse:  # type: ignore[override]
        _enlist(self)  # connected by now: the socket to shut down is known
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection, _Watched):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _enlist(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> BaseHTTPResponse:  # type: ignore[override]
        _enlist(self)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections that enlist with the thread's active Watch."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):  # SOCKS managers keep their own pools
            manager.pool_classes_by_scheme = _POOLS
        return manager
