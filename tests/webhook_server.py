"""A real local HTTP server that records the JSON it is sent (a stand-in Teams/Logic App)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookRecorder:
    def __init__(self, status: int = 202, body: str = "") -> None:
        self.status = status
        self.body = body
        self.received: list[dict[str, Any]] = []
        self.url = ""


@contextmanager
def webhook_server(status: int = 202, body: str = "") -> Iterator[WebhookRecorder]:
    """status and body: every answer's (the retired Teams connector answers 200 with a
    failure text)."""
    recorder = WebhookRecorder(status, body)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            recorder.received.append(json.loads(self.rfile.read(length)))
            payload = recorder.body.encode()
            self.send_response(recorder.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/hook?sig=webhook-signature-secret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
