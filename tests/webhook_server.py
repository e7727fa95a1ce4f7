"""A real local HTTP server that records the JSON it is sent (a stand-in Teams/Logic App)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookRecorder:
    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.url = ""


@contextmanager
def webhook_server(status: int = 202) -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder(status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            recorder.received.append(json.loads(self.rfile.read(length)))
            self.send_response(recorder.status)
            self.end_headers()

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
