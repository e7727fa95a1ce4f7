"""Start and stop Azurite's Blob service (the npm package pinned in package.json) for tests.

The binary comes from `npm ci` at the repository root (node_modules/.bin/azurite-blob). It
listens on 127.0.0.1 on a free port and keeps its data in a temporary folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
STARTUP_TIMEOUT_SECONDS = 60.0

# Azurite's documented development account: public, fixed, and valid only against the emulator.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Azurite:
    """A running Azurite Blob service."""

    process: subprocess.Popen[bytes]
    port: int
    location: Path

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{DEV_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.location, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_azurite() -> Azurite:
    """Start Azurite and wait until it accepts connections; raise RuntimeError if it cannot."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(
            f"Azurite is not installed ({AZURITE_BIN} is missing): run `npm ci` in {REPO_ROOT}"
        )
    location = Path(tempfile.mkdtemp(prefix="azurite-"))
    port = _free_port()
    process = subprocess.Popen(
        [
            str(AZURITE_BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Azurite(process, port, location)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            server.stop()
            raise RuntimeError(f"Azurite exited at start (code {process.returncode}): {error}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"Azurite did not listen on 127.0.0.1:{port} within {STARTUP_TIMEOUT_SECONDS:.0f} s"
    )
