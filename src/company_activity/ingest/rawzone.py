"""The raw zone's layout: date-partitioned NDJSON with a manifest, and CRM snapshot files.

    {BLOB_CONTAINER}/date=YYYY-MM-DD/part-NNNNN.ndjson[.gz]
    {BLOB_CONTAINER}/date=YYYY-MM-DD/_manifest.json     (written last)
    {CRM_BLOB_PATH}crm_companies_YYYY-MM-DD.csv          (CRM_BLOB_PATH = container/prefix)

Readers trust only a partition with a manifest and read exactly the parts it lists. A part's
sha256 and bytes are those of the blob as stored (compressed, for .gz parts).

A rerun writes its parts under new numbers (after the highest already present), then the new
manifest, then deletes the parts that were there before: until the new manifest lands, the
previous one and every part it lists stay readable.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import BinaryIO

from company_activity.errors import DataError, PipelineError
from company_activity.storage.base import BlobStore

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
CRM_FILE_PREFIX = "crm_companies_"


def partition_prefix(day: date) -> str:
    return f"date={day.isoformat()}/"


def part_path(day: date, number: int, gzipped: bool = False) -> str:
    return f"{partition_prefix(day)}part-{number:05d}.ndjson{'.gz' if gzipped else ''}"


def manifest_path(day: date) -> str:
    return partition_prefix(day) + MANIFEST_NAME


@dataclass(frozen=True)
class PartInfo:
    """One part file of a partition, as the manifest lists it."""

    path: str
    records: int
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    """What a completed fetch of one day wrote."""

    day: date
    run_id: str
    fetched_at: str
    pages: int
    parts: tuple[PartInfo, ...] = field(default_factory=tuple)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.parts)

    def to_json(self) -> bytes:
        body = asdict(self)
        body["day"] = self.day.isoformat()
        body["records"] = self.records
        return json.dumps(body, indent=2, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        try:
            body = json.loads(data)
            return cls(
                day=date.fromisoformat(body["day"]),
                run_id=str(body["run_id"]),
                fetched_at=str(body["fetched_at"]),
                pages=int(body["pages"]),
                parts=tuple(
                    PartInfo(str(p["path"]), int(p["records"]), str(p["sha256"]), int(p["bytes"]))
                    for p in body["parts"]
                ),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"manifest {where} is unreadable ({exc}); re-run the fetch for that date"
            ) from None


def read_manifest(store: BlobStore, container: str, day: date) -> Manifest | None:
    """The day's manifest, or None when the day has no completed partition."""
    path = manifest_path(day)
    if not store.exists(container, path):
        return None
    with store.open_read(container, path) as handle:
        return Manifest.from_json(handle.read(), store.url(container, path))


def open_part(store: BlobStore, container: str, part: PartInfo) -> BinaryIO:
    """Open a part for streaming reads, decompressing gzipped parts on the fly."""
    raw = store.open_read(container, part.path)
    if part.path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def crm_location(crm_blob_path: str) -> tuple[str, str]:
    """Split CRM_BLOB_PATH ('raw/crm/') into container ('raw') and prefix ('crm/')."""
    cleaned = crm_blob_path.strip().strip("/")
    if not cleaned:
        raise DataError("CRM_BLOB_PATH is empty; set it to container/prefix, e.g. raw/crm/")
    container, _, prefix = cleaned.partition("/")
    return container, f"{prefix}/" if prefix else ""


def crm_file_name(day: date) -> str:
    return f"{CRM_FILE_PREFIX}{day.isoformat()}.csv"


# --- writing a partition ---------------------------------------------------------------------

DEFAULT_RECORDS_PER_PART = 100_000
# Lines are handed to the store in chunks of about this size: few calls, flat memory.
WRITE_CHUNK_BYTES = 1 << 20
_PART_NAME = re.compile(r"part-(\d+)\.ndjson(?:\.gz)?")


def part_number(path: str) -> int | None:
    """The NNNNN of a part's path, None for anything that is not a part."""
    match = _PART_NAME.fullmatch(path.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


class PartitionWriter:
    """Writes one day's partition: parts while records arrive, the manifest last, then removes
    the parts of earlier runs. One writer per date at a time.

    Use write_lines() (any number of times), then commit(); on failure call abort(), which
    deletes this run's parts and leaves the previous partition as it was.
    """

    def __init__(
        self,
        store: BlobStore,
        container: str,
        day: date,
        run_id: str,
        *,
        records_per_part: int = DEFAULT_RECORDS_PER_PART,
        gzipped: bool = False,
    ) -> None:
        if records_per_part < 1:
            raise DataError(f"records per part must be at least 1, got {records_per_part}")
        self.store = store
        self.container = container
        self.day = day
        self.run_id = run_id
        self.records_per_part = records_per_part
        self.gzipped = gzipped
        # Only what is here now is ever deleted as stale: never another writer's new parts.
        self._before = store.list(container, partition_prefix(day))
        numbers = [n for n in map(part_number, self._before) if n is not None]
        self._next_number = max(numbers, default=0) + 1
        self._parts: list[PartInfo] = []

    @property
    def parts(self) -> tuple[PartInfo, ...]:
        return tuple(self._parts)

    def write_lines(self, lines: Iterable[bytes]) -> None:
        """Stream JSON lines (without their newline) into parts of records_per_part each."""
        source = iter(lines)
        while True:
            first = next(source, None)
            if first is None:
                return
            rest = itertools.islice(source, self.records_per_part - 1)
            self._write_part(itertools.chain((first,), rest))

    def _write_part(self, lines: Iterator[bytes]) -> None:
        path = part_path(self.day, self._next_number, self.gzipped)
        self._next_number += 1
        digest = hashlib.sha256()
        records = 0

        def encoded() -> Iterator[bytes]:
            nonlocal records
            batch: list[bytes] = []
            size = 0
            for line in lines:
                batch.append(line)
                batch.append(b"\n")
                records += 1
                size += len(line) + 1
                if size >= WRITE_CHUNK_BYTES:
                    yield b"".join(batch)
                    batch, size = [], 0
            if batch:
                yield b"".join(batch)

        def stored() -> Iterator[bytes]:
            chunks = _gzip_chunks(encoded()) if self.gzipped else encoded()
            for chunk in chunks:
                digest.update(chunk)
                yield chunk

        written = self.store.write(self.container, path, stored())
        self._parts.append(PartInfo(path, records, digest.hexdigest(), written))

    def commit(self, pages: int, fetched_at: str) -> Manifest:
        """Write the manifest (the partition becomes the day's truth), then delete stale parts."""
        manifest = Manifest(self.day, self.run_id, fetched_at, pages, tuple(self._parts))
        self.store.write(self.container, manifest_path(self.day), [manifest.to_json()])
        keep = {p.path for p in self._parts}
        for path in self._before:
            if part_number(path) is not None and path not in keep:
                try:
                    self.store.delete(self.container, path)
                except PipelineError as exc:
                    # Harmless: readers follow the manifest, and the next run removes it.
                    log.warning("could not delete stale part %s: %s", path, exc)
        return manifest

    def abort(self) -> None:
        """Delete the parts this run wrote; the previous manifest and its parts stay."""
        for part in self._parts:
            try:
                self.store.delete(self.container, part.path)
            except PipelineError as exc:
                log.warning("could not delete unfinished part %s: %s", part.path, exc)
        self._parts.clear()


def _gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # zlib's gzip header carries no timestamp: the same records give the same bytes and sha256.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()
