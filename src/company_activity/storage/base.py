"""The raw zone's storage interface: a local folder or Azure Blob Storage.

Paths are '/'-separated names inside a container, as in Blob Storage; the local backend keeps
each container as a sub-folder of LOCAL_BLOB_DIR.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import BinaryIO


class BlobStore(abc.ABC):
    """Containers of named blobs. Reads and writes stream; nothing holds a whole blob."""

    @abc.abstractmethod
    def open_read(self, container: str, path: str) -> BinaryIO:
        """Open a blob for streaming reads. Raises DataError when it does not exist."""

    @abc.abstractmethod
    def write(self, container: str, path: str, chunks: Iterable[bytes]) -> int:
        """Write (or replace) a blob from a stream of chunks; return the bytes written.

        The blob appears whole or not at all: readers never see a half-written blob.
        """

    @abc.abstractmethod
    def list(self, container: str, prefix: str = "") -> list[str]:
        """Paths of the blobs under prefix, sorted."""

    @abc.abstractmethod
    def exists(self, container: str, path: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, container: str, path: str) -> None:
        """Delete a blob; deleting one that is already gone is not an error."""

    @abc.abstractmethod
    def url(self, container: str, path: str) -> str:
        """Where the blob lives, for provenance columns and messages (never with a secret)."""
