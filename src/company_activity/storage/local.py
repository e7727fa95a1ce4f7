"""The embedded raw zone: a local folder with one sub-folder per container."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from company_activity.errors import DataError, TerminalError
from company_activity.storage.base import BlobStore


class LocalFolderStore(BlobStore):
    """Blobs as files under root/container/path."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _file(self, container: str, path: str) -> Path:
        target = (self.root / container / path).resolve()
        if not target.is_relative_to((self.root / container).resolve()):
            raise DataError(f"blob path {path!r} escapes container {container!r}")
        return target

    def open_read(self, container: str, path: str) -> BinaryIO:
        try:
            return self._file(container, path).open("rb")
        except FileNotFoundError:
            raise DataError(f"no blob {container}/{path} in {self.root}") from None

    def write(self, container: str, path: str, chunks: Iterable[bytes]) -> int:
        target = self._file(container, path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target, then rename: readers see the old blob or the new, never
            # half.
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        except OSError as exc:
            if not isinstance(exc, PermissionError) and exc.errno != errno.EROFS:
                raise
            raise TerminalError(
                f"cannot write the raw zone folder {target.parent} ({exc.strerror}): make it "
                "writable, or set LOCAL_BLOB_DIR to a writable folder"
            ) from None
        written = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    written += len(chunk)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return written

    def list(self, container: str, prefix: str = "") -> list[str]:
        base = self.root / container
        # Only the folder a prefix names can hold its matches: walk that one, not the whole
        # container (a raw zone keeps a folder per date, and a fetch lists one date).
        folder, _, _ = prefix.rpartition("/")
        start = base / folder if folder else base
        if not start.is_dir():
            return []
        found = []
        for file in start.rglob("*"):
            if file.is_file() and not file.name.startswith(".tmp-"):
                name = file.relative_to(base).as_posix()
                if name.startswith(prefix):
                    found.append(name)
        return sorted(found)

    def exists(self, container: str, path: str) -> bool:
        return self._file(container, path).is_file()

    def delete(self, container: str, path: str) -> None:
        self._file(container, path).unlink(missing_ok=True)

    def url(self, container: str, path: str) -> str:
        return str(self.root / container / path)
