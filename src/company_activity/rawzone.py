"""The raw zone's layout: date-partitioned NDJSON with a manifest, and CRM snapshot files.

    {BLOB_CONTAINER}/date=YYYY-MM-DD/part-NNNNN.ndjson[.gz]
    {BLOB_CONTAINER}/date=YYYY-MM-DD/_manifest.json     (written last)
    {CRM_BLOB_PATH}crm_companies_YYYY-MM-DD.csv          (CRM_BLOB_PATH = container/prefix)

Readers trust only a partition with a manifest and read exactly the parts it lists.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import BinaryIO

from company_activity.errors import DataError
from company_activity.storage.base import BlobStore

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
