"""The Azure Blob backend against Azurite, the Azure Storage emulator (npm package `azurite`,
pinned in package.json; `npm ci` installs it). The session starts one Azurite on loopback."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from company_activity.errors import ConfigError, DataError
from company_activity.ingest import api_client, rawzone
from company_activity.ingest.fetch import fetch_day
from company_activity.mock import data as mock_data
from company_activity.settings import Settings
from company_activity.storage import open_store
from company_activity.storage.azure_blob import TRANSFER_CHUNK_BYTES, AzureBlobStore
from tests.azurite_server import DEV_KEY, Azurite, start_azurite
from tests.ingestion_fixtures import (
    API_KEY,
    DAY,
    SEED,
    client_for,
    mock_server,
    part_digests,
    partition_blobs,
    read_partition,
)

pytestmark = pytest.mark.azurite

OPTIONS = {"run_id": "run1", "fetched_at": "2025-03-04T01:00:00", "records_per_part": 7}


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    server = start_azurite()
    yield server
    server.stop()


@pytest.fixture
def store(azurite: Azurite) -> AzureBlobStore:
    return AzureBlobStore(BlobServiceClient.from_connection_string(azurite.connection_string))


@pytest.fixture
def container() -> str:
    """A fresh container name per test: tests share one Azurite."""
    return f"t{uuid.uuid4().hex[:20]}"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_client, "sleep", lambda seconds: None)


def test_blob_round_trip(store: AzureBlobStore, container: str) -> None:
    assert store.list(container) == []
    assert not store.exists(container, "a/b.txt")
    assert store.write(container, "a/b.txt", [b"hello\n", b"world\n"]) == 12
    assert store.write(container, "a/c.txt", []) == 0
    assert store.write(container, "z.txt", [b"z"]) == 1
    assert store.list(container) == ["a/b.txt", "a/c.txt", "z.txt"]
    assert store.list(container, "a/") == ["a/b.txt", "a/c.txt"]
    with store.open_read(container, "a/b.txt") as handle:
        assert handle.readline() == b"hello\n"
        assert handle.read() == b"world\n"
    store.write(container, "a/b.txt", [b"replaced"])
    with store.open_read(container, "a/b.txt") as handle:
        assert handle.read() == b"replaced"
    store.delete(container, "a/b.txt")
    store.delete(container, "a/b.txt")  # already gone: fine
    assert store.list(container) == ["a/c.txt", "z.txt"]
    assert store.url(container, "z.txt").endswith(f"/{container}/z.txt")
    assert store.url(container, "").endswith(f"/{container}/")


def test_missing_blob_is_a_data_error(store: AzureBlobStore, container: str) -> None:
    store.write(container, "x", [b"1"])
    with pytest.raises(DataError, match=f"no blob {container}/nope"):
        store.open_read(container, "nope")


def test_large_blobs_stream_in_blocks(store: AzureBlobStore, container: str) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    count = 2 * TRANSFER_CHUNK_BYTES // len(chunk) + 1
    assert store.write(container, "big.bin", (chunk for _ in range(count))) == count * len(chunk)
    digest = hashlib.sha256()
    with store.open_read(container, "big.bin") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == hashlib.sha256(chunk * count).hexdigest()


def test_a_failed_upload_leaves_no_blob(store: AzureBlobStore, container: str) -> None:
    store.write(container, "keep.txt", [b"old"])

    def broken() -> Iterator[bytes]:
        yield b"x" * (TRANSFER_CHUNK_BYTES + 1)
        raise DataError("the source broke")

    with pytest.raises(DataError, match="the source broke"):
        store.write(container, "new.txt", broken())
    with pytest.raises(DataError):
        store.write(container, "keep.txt", broken())
    assert store.list(container) == ["keep.txt"]
    with store.open_read(container, "keep.txt") as handle:
        assert handle.read() == b"old"


def test_open_store_picks_blob_storage_from_the_settings(
    azurite: Azurite, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(BLOB_CONN_STR=azurite.connection_string)
    assert isinstance(open_store(settings), AzureBlobStore)
    with pytest.raises(ConfigError, match="BLOB_CONN_STR is not a valid"):
        open_store(make_settings(BLOB_CONN_STR="not a connection string"))


def test_wrong_credentials_fail_clearly_without_the_key(azurite: Azurite, container: str) -> None:
    wrong = azurite.connection_string.replace(DEV_KEY, "d3Jvbmc=" * 11)
    store = AzureBlobStore(BlobServiceClient.from_connection_string(wrong))
    with pytest.raises(ConfigError) as caught:
        store.write(container, "x", [b"1"])
    assert "BLOB_CONN_STR" in str(caught.value)
    assert DEV_KEY not in str(caught.value) and "d3Jvbmc=" not in str(caught.value)


@pytest.mark.parametrize("pagination", ["pages", "cursor"])
def test_fetch_into_blob_storage_and_rerun(
    pagination: str, store: AzureBlobStore, container: str
) -> None:
    expected = mock_data.usage_lines(SEED, 25, DAY)
    with mock_server(pagination=pagination) as server, client_for(server) as client:
        first = fetch_day(client, store, container, DAY, **OPTIONS)  # type: ignore[arg-type]
        assert read_partition(store, container, DAY) == expected
        blobs, parts = partition_blobs(store, container, DAY), part_digests(store, container, DAY)

        rerun = fetch_day(client, store, container, DAY, **{**OPTIONS, "run_id": "run2"})  # type: ignore[arg-type]
        assert part_digests(store, container, DAY) == parts
        assert len(partition_blobs(store, container, DAY)) == len(blobs) == len(parts) + 1
        assert read_partition(store, container, DAY) == expected
        assert (rerun.records, rerun.parts, rerun.bytes) == (first.records, 4, first.bytes)

        # A rerun that fails half way leaves the good partition as it was.
        before = partition_blobs(store, container, DAY)
        manifest = rawzone.read_manifest(store, container, DAY)
        server.api.inject("noitems", times=None, page=3)
        with pytest.raises(DataError, match="page 3"):
            fetch_day(client, store, container, DAY, **{**OPTIONS, "run_id": "run3"})  # type: ignore[arg-type]
    assert partition_blobs(store, container, DAY) == before
    assert rawzone.read_manifest(store, container, DAY) == manifest
    assert read_partition(store, container, DAY) == expected


def test_gzip_parts_in_blob_storage(store: AzureBlobStore, container: str) -> None:
    with mock_server() as server, client_for(server) as client:
        fetch_day(client, store, container, DAY, gzipped=True, **OPTIONS)  # type: ignore[arg-type]
    assert all(p.endswith((".ndjson.gz", "_manifest.json")) for p in store.list(container))
    assert read_partition(store, container, DAY) == mock_data.usage_lines(SEED, 25, DAY)


def test_crm_snapshot_lands_where_the_loader_looks(store: AzureBlobStore, container: str) -> None:
    where = mock_data.write_crm_csv(store, f"{container}/crm/", SEED, 40, DAY)
    container_name, prefix = rawzone.crm_location(f"{container}/crm/")
    path = prefix + rawzone.crm_file_name(DAY)
    assert where == f"{container}/{path}"
    with store.open_read(container_name, path) as handle:
        assert handle.read() == mock_data.crm_csv(SEED, 40, DAY)


def test_cli_fetch_into_azurite(
    azurite: Azurite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    container: str,
) -> None:
    from company_activity.cli import main

    for name in ("BLOB_ACCOUNT_URL", "KEY_VAULT_NAME", "LOCAL_BLOB_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with mock_server(pagination="cursor") as server:
        monkeypatch.setenv("API_URL", server.url)
        monkeypatch.setenv("API_KEY", API_KEY)
        monkeypatch.setenv("API_PAGE_SIZE", "10")
        monkeypatch.setenv("BLOB_CONN_STR", azurite.connection_string)
        monkeypatch.setenv("BLOB_CONTAINER", container)
        end = (DAY + timedelta(days=1)).isoformat()
        args = [
            "--env-file",
            os.devnull,
            "fetch",
            "--start",
            DAY.isoformat(),
            "--end",
            end,
            "--concurrency",
            "2",
        ]
        assert main(args) == 0
        assert main(args) == 0  # the rerun
    out = capsys.readouterr().out
    assert out.count("  ok  ") == 4
    assert DEV_KEY not in out and API_KEY not in out
    store = AzureBlobStore(BlobServiceClient.from_connection_string(azurite.connection_string))
    for day in (DAY, DAY + timedelta(days=1)):
        assert read_partition(store, container, day) == mock_data.usage_lines(SEED, 25, day)
        assert len(partition_blobs(store, container, day)) == 2  # one part + the manifest
