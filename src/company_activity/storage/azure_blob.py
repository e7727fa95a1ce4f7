"""The raw zone in Azure Blob Storage (tested against Azurite, the local emulator).

Credentials: BLOB_CONN_STR (a connection string), or BLOB_ACCOUNT_URL with
DefaultAzureCredential (managed identity in Azure, `az login` on a laptop). Uploads stream in
blocks committed at the end, so a blob appears whole or not at all; downloads stream in chunks.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, BinaryIO

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from company_activity.errors import ConfigError, DataError, TerminalError, TransientError
from company_activity.redact import redact
from company_activity.storage.base import BlobStore

if TYPE_CHECKING:
    from company_activity.settings import Settings

# Memory stays flat: blobs move in blocks and chunks of this size.
TRANSFER_CHUNK_BYTES = 4 * 1024 * 1024
_CLIENT_OPTIONS: dict[str, Any] = {
    "max_single_put_size": TRANSFER_CHUNK_BYTES,
    "max_block_size": TRANSFER_CHUNK_BYTES,
    "max_single_get_size": TRANSFER_CHUNK_BYTES,
    "max_chunk_get_size": TRANSFER_CHUNK_BYTES,
}


class AzureBlobStore(BlobStore):
    """Blobs in an Azure Storage account; containers are created on first write."""

    def __init__(self, service: BlobServiceClient) -> None:
        self._service = service
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureBlobStore:
        if settings.blob_conn_str:
            try:
                service = BlobServiceClient.from_connection_string(
                    settings.blob_conn_str, **_CLIENT_OPTIONS
                )
            except ValueError:
                raise ConfigError(
                    "BLOB_CONN_STR is not a valid Azure Storage connection string; copy it "
                    "from the storage account's Access keys page (or use BLOB_ACCOUNT_URL)"
                ) from None
            return cls(service)
        if not settings.blob_account_url:
            raise ConfigError("set BLOB_CONN_STR or BLOB_ACCOUNT_URL to use Azure Blob Storage")
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        return cls(
            BlobServiceClient(settings.blob_account_url, credential=credential, **_CLIENT_OPTIONS)
        )

    def open_read(self, container: str, path: str) -> BinaryIO:
        client = self._service.get_blob_client(container, path)
        with _mapped(f"reading {container}/{path}", missing=f"no blob {container}/{path}"):
            downloader = client.download_blob()
        reader = _ChunkReader(downloader.chunks(), f"reading {container}/{path}")
        return io.BufferedReader(reader, buffer_size=1 << 16)  # type: ignore[return-value]

    def write(self, container: str, path: str, chunks: Iterable[bytes]) -> int:
        self._ensure_container(container)
        written = 0

        def counted() -> Iterator[bytes]:
            nonlocal written
            for chunk in chunks:
                written += len(chunk)
                yield chunk

        client = self._service.get_blob_client(container, path)
        with _mapped(f"writing {container}/{path}"):
            client.upload_blob(counted(), overwrite=True)
        return written

    def list(self, container: str, prefix: str = "") -> list[str]:
        client = self._service.get_container_client(container)
        try:
            with _mapped(f"listing {container}/{prefix}"):
                return sorted(b.name for b in client.list_blobs(name_starts_with=prefix or None))
        except DataError:
            return []  # no container yet: nothing in it

    def exists(self, container: str, path: str) -> bool:
        with _mapped(f"checking {container}/{path}"):
            return bool(self._service.get_blob_client(container, path).exists())

    def delete(self, container: str, path: str) -> None:
        try:
            with _mapped(f"deleting {container}/{path}"):
                self._service.get_blob_client(container, path).delete_blob()
        except DataError:
            pass  # already gone

    def url(self, container: str, path: str) -> str:
        # Without the query string: a SAS token must never reach a log or a column.
        if not path:
            return str(self._service.get_container_client(container).url).split("?", 1)[0] + "/"
        return str(self._service.get_blob_client(container, path).url).split("?", 1)[0]

    def _ensure_container(self, container: str) -> None:
        with self._lock:
            if container in self._ready:
                return
        client = self._service.get_container_client(container)
        with _mapped(f"creating container {container}"), suppress(ResourceExistsError):
            client.create_container()
        with self._lock:
            self._ready.add(container)


class _ChunkReader(io.RawIOBase):
    """A readable stream over the downloader's chunks."""

    def __init__(self, chunks: Iterator[bytes], what: str) -> None:
        self._chunks = chunks
        self._what = what
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            with _mapped(self._what):
                chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


@contextmanager
def _mapped(what: str, missing: str | None = None) -> Iterator[None]:
    """Turn the SDK's exceptions into the package's, with a next step in the message."""
    try:
        yield
    except ResourceNotFoundError:
        raise DataError(missing or f"{what}: not found") from None
    except ClientAuthenticationError as exc:
        raise ConfigError(
            f"{what}: Blob Storage rejected the credentials ({_short(exc)}); check BLOB_CONN_STR, "
            "or the identity's Storage Blob Data Contributor role on BLOB_ACCOUNT_URL"
        ) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientError(
            f"{what}: could not reach Blob Storage ({_short(exc)}); retry later"
        ) from None
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status == 403:
            raise ConfigError(
                f"{what}: access denied ({_short(exc)}); check the account key in "
                "BLOB_CONN_STR, or the identity's Storage Blob Data Contributor role on "
                "BLOB_ACCOUNT_URL"
            ) from None
        if status in {408, 429} or status >= 500:
            raise TransientError(
                f"{what}: Blob Storage is busy ({_short(exc)}); retry later"
            ) from None
        raise TerminalError(f"{what}: Blob Storage refused the request ({_short(exc)})") from None
    except AzureError as exc:
        raise TransientError(f"{what}: {_short(exc)}; retry later") from None


def _short(exc: BaseException) -> str:
    return redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
