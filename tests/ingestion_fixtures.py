"""Helpers shared by the ingestion tests (API client, mock API, fetch, raw zone, Blob backend)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from company_activity.ingest import rawzone
from company_activity.ingest.api_client import ApiClient, ApiConfig
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.storage.base import BlobStore

API_KEY = "test-key-5b1e9c0f7d2a"
SEED = 7
DAY = date(2025, 3, 3)  # a Monday
CONTAINER = "product-api-raw"


@contextmanager
def mock_server(**options: Any) -> Iterator[MockApiServer]:
    """The mock API on a free loopback port, serving `options` over the defaults below."""
    settings: dict[str, Any] = {"seed": SEED, "companies": 25, "api_key": API_KEY}
    settings.update(options)
    with MockApiServer(MockApiConfig(**settings)) as server:
        yield server


def client_for(server: MockApiServer, **options: Any) -> ApiClient:
    """A client of the mock with small pages and fast timeouts (override with options)."""
    settings: dict[str, Any] = {
        "url": server.url,
        "api_key": API_KEY,
        "page_size": 10,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "max_attempts": 4,
        "max_backoff_seconds": 30.0,
    }
    settings.update(options)
    return ApiClient(ApiConfig(**settings))


def read_partition(store: BlobStore, container: str, day: date) -> list[bytes]:
    """The lines of a day's partition, through its manifest, checking every part's sha256."""
    manifest = rawzone.read_manifest(store, container, day)
    assert manifest is not None, f"no manifest for {day}"
    lines: list[bytes] = []
    for part in manifest.parts:
        with store.open_read(container, part.path) as raw:
            stored = raw.read()
        assert hashlib.sha256(stored).hexdigest() == part.sha256
        assert len(stored) == part.bytes
        with rawzone.open_part(store, container, part) as handle:
            part_lines = handle.read().splitlines()
        assert len(part_lines) == part.records
        lines.extend(part_lines)
    return lines


def partition_blobs(store: BlobStore, container: str, day: date) -> list[str]:
    return store.list(container, rawzone.partition_prefix(day))


def part_digests(store: BlobStore, container: str, day: date) -> list[tuple[int, str]]:
    """(records, sha256) of each listed part, in order: a rerun must reproduce exactly these."""
    manifest = rawzone.read_manifest(store, container, day)
    assert manifest is not None
    return [(p.records, p.sha256) for p in manifest.parts]
