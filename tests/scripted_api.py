"""A scripted HTTP server for tests: real sockets on loopback, answers from a script.

Like the field cases' tools/script_api.py (whose `{"DATE|PAGE": [reply, ...]}` files it reads),
plus what the HTTP layer's tests need: bodies gzipped or cut short, heads and bodies dripped a
byte at a time, and a record of every request (time, headers, body) to assert on.

Replies for a key are served in order; the last one repeats. The key is `DATE|PAGE` from the
query, else the path, else "*". No reply for a request: 404.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIELD_CASES = Path(__file__).resolve().parent / "data" / "field_cases"


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    gzip: bool = False  # send the body gzipped (Content-Encoding: gzip)
    cut: int | None = None  # send only this many body bytes (Content-Length says all), close
    drip_head: float = 0.0  # seconds between the bytes of the status line and headers
    drip_body: float = 0.0  # seconds between the bytes of the body
    cut_head: int | None = None  # send only this many bytes of the status line and headers, close

    @classmethod
    def from_script(cls, entry: Mapping[str, Any]) -> Reply:
        """A reply of a field case's script: status, headers, body or body_hex."""
        body = (
            bytes.fromhex(entry["body_hex"])
            if "body_hex" in entry
            else str(entry.get("body", "")).encode("utf-8")
        )
        return cls(int(entry.get("status", 200)), dict(entry.get("headers", {})), body)


def field_case(name: str) -> dict[str, list[Reply]]:
    """A field case's script (tests/data/field_cases/NAME) as replies by key."""
    script = json.loads((FIELD_CASES / name).read_text(encoding="utf-8"))
    return {key: [Reply.from_script(entry) for entry in replies] for key, replies in script.items()}


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    at: float  # time.time() when the request line arrived
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes


class ScriptedServer:
    """The server on a free loopback port; use as a context manager."""

    def __init__(
        self, script: Mapping[str, list[Reply]], tls: ssl.SSLContext | None = None
    ) -> None:
        self.script = {key: list(replies) for key, replies in script.items()}
        self.requests: list[Seen] = []
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def origin(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str = "/usage") -> str:
        return self.origin + path

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply_for(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            date, page = seen.query.get("date", [""])[-1], seen.query.get("page", [""])[-1]
            for key in (f"{date}|{page}", seen.path, "*"):
                replies = self.script.get(key)
                if replies:
                    served = self._served.get(key, 0)
                    self._served[key] = served + 1
                    return replies[min(served, len(replies) - 1)]
        return Reply(404, {}, b"no such page")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            at=time.time(),
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        reply = self.server.owner.reply_for(seen)
        body = gzip.compress(reply.body) if reply.gzip else reply.body
        headers = dict(reply.headers)
        if reply.gzip:
            headers["Content-Encoding"] = "gzip"
        if "Transfer-Encoding" not in headers:
            headers.setdefault("Content-Length", str(len(body)))
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        head = f"HTTP/1.1 {reply.status} {reason}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        try:
            if reply.cut_head is not None:
                self._write(head.encode("latin-1")[: reply.cut_head], 0.0)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
                return
            self._write(head.encode("latin-1"), reply.drip_head)
            if reply.cut is not None:
                self._write(body[: reply.cut], 0.0)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)
                return
            self._write(body, reply.drip_body)
        except OSError:  # the client hung up (a deadline did its job)
            self.close_connection = True

    def _write(self, data: bytes, drip: float) -> None:
        if not drip:
            self.wfile.write(data)
            self.wfile.flush()
            return
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(drip)


@contextmanager
def scripted(
    script: Mapping[str, list[Reply]], tls: ssl.SSLContext | None = None
) -> Iterator[ScriptedServer]:
    with ScriptedServer(script, tls) as server:
        yield server


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the certificate file a client should trust."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
