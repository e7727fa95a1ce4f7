"""The raw zone's layout, manifest and partition writer, on the local folder backend."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from company_activity.errors import DataError
from company_activity.ingest import rawzone
from company_activity.ingest.rawzone import Manifest, PartInfo, PartitionWriter
from company_activity.storage import LocalFolderStore
from tests.ingestion_fixtures import CONTAINER, read_partition

DAY = date(2025, 3, 3)
LINES = [
    f'{{"company_id":"c{i:06d}","active_users":{i},"events":{i * 3}}}'.encode() for i in range(10)
]


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


def write_day(
    store: LocalFolderStore, lines: list[bytes], run_id: str = "run1", **options: object
) -> Manifest:
    writer = PartitionWriter(store, CONTAINER, DAY, run_id, **options)  # type: ignore[arg-type]
    writer.write_lines(lines)
    return writer.commit(pages=2, fetched_at="2025-03-04T01:00:00")


def test_layout_names() -> None:
    assert rawzone.partition_prefix(DAY) == "date=2025-03-03/"
    assert rawzone.part_path(DAY, 7) == "date=2025-03-03/part-00007.ndjson"
    assert rawzone.part_path(DAY, 7, gzipped=True) == "date=2025-03-03/part-00007.ndjson.gz"
    assert rawzone.manifest_path(DAY) == "date=2025-03-03/_manifest.json"
    assert rawzone.part_number("date=2025-03-03/part-00012.ndjson.gz") == 12
    assert rawzone.part_number("date=2025-03-03/_manifest.json") is None
    assert rawzone.part_number("date=2025-03-03/old-part-00001.ndjson") is None
    assert rawzone.crm_location("raw/crm/") == ("raw", "crm/")
    assert rawzone.crm_location("/landing/") == ("landing", "")
    assert rawzone.crm_file_name(DAY) == "crm_companies_2025-03-03.csv"
    with pytest.raises(DataError):
        rawzone.crm_location(" / ")


def test_parts_rotate_and_the_manifest_describes_them(store: LocalFolderStore) -> None:
    manifest = write_day(store, LINES, records_per_part=3)
    assert [p.records for p in manifest.parts] == [3, 3, 3, 1]
    assert [p.path for p in manifest.parts] == [rawzone.part_path(DAY, n) for n in (1, 2, 3, 4)]
    assert manifest.records == 10
    assert manifest.pages == 2
    assert manifest.run_id == "run1"
    assert read_partition(store, CONTAINER, DAY) == LINES
    again = rawzone.read_manifest(store, CONTAINER, DAY)
    assert again == manifest


def test_lines_stream_through_without_being_held(store: LocalFolderStore) -> None:
    pulled = 0

    def lines() -> Iterator[bytes]:
        nonlocal pulled
        for line in LINES:
            pulled += 1
            yield line

    writer = PartitionWriter(store, CONTAINER, DAY, "run1", records_per_part=4)
    writer.write_lines(lines())
    assert pulled == 10
    assert [p.records for p in writer.parts] == [4, 4, 2]


def test_an_empty_day_has_a_manifest_and_no_parts(store: LocalFolderStore) -> None:
    manifest = write_day(store, [])
    assert manifest.parts == ()
    assert store.list(CONTAINER) == [rawzone.manifest_path(DAY)]
    assert read_partition(store, CONTAINER, DAY) == []


def test_gzip_parts_are_deterministic_and_readable(store: LocalFolderStore) -> None:
    first = write_day(store, LINES, gzipped=True, records_per_part=6)
    second = write_day(store, LINES, gzipped=True, records_per_part=6)
    assert all(p.path.endswith(".ndjson.gz") for p in second.parts)
    assert [p.sha256 for p in first.parts] == [p.sha256 for p in second.parts]
    assert read_partition(store, CONTAINER, DAY) == LINES
    with store.open_read(CONTAINER, second.parts[0].path) as raw:
        assert gzip.decompress(raw.read()).splitlines() == LINES[:6]


def test_rerun_replaces_the_day_under_new_names(store: LocalFolderStore) -> None:
    first = write_day(store, LINES, records_per_part=4)
    second = write_day(store, LINES, run_id="run2", records_per_part=4)
    assert [p.path for p in second.parts] == [rawzone.part_path(DAY, n) for n in (4, 5, 6)]
    assert [(p.records, p.sha256) for p in second.parts] == [
        (p.records, p.sha256) for p in first.parts
    ]
    assert store.list(CONTAINER) == sorted(
        [rawzone.manifest_path(DAY), *(p.path for p in second.parts)]
    )
    assert read_partition(store, CONTAINER, DAY) == LINES


def test_until_commit_the_previous_partition_stays_whole(store: LocalFolderStore) -> None:
    before = write_day(store, LINES, records_per_part=4)
    listed = store.list(CONTAINER)
    writer = PartitionWriter(store, CONTAINER, DAY, "run2", records_per_part=4)
    writer.write_lines(LINES[:5])
    assert rawzone.read_manifest(store, CONTAINER, DAY) == before
    assert read_partition(store, CONTAINER, DAY) == LINES
    writer.abort()
    assert store.list(CONTAINER) == listed


def test_a_failing_stream_leaves_no_new_part(store: LocalFolderStore) -> None:
    write_day(store, LINES, records_per_part=4)
    listed = store.list(CONTAINER)

    def broken() -> Iterator[bytes]:
        yield from LINES[:6]
        raise DataError("page 2 is malformed")

    writer = PartitionWriter(store, CONTAINER, DAY, "run2", records_per_part=4)
    with pytest.raises(DataError):
        writer.write_lines(broken())
    writer.abort()
    assert store.list(CONTAINER) == listed
    assert read_partition(store, CONTAINER, DAY) == LINES


def test_leftovers_are_cleaned_but_other_writers_parts_and_files_are_not(
    store: LocalFolderStore,
) -> None:
    prefix = rawzone.partition_prefix(DAY)
    store.write(CONTAINER, prefix + "part-00009.ndjson", [b"orphan of a crashed run\n"])
    store.write(CONTAINER, prefix + "README.txt", [b"not a part\n"])
    writer = PartitionWriter(store, CONTAINER, DAY, "run1")
    # A part that appears after this writer started belongs to someone else.
    store.write(CONTAINER, prefix + "part-00042.ndjson", [b"{}\n"])
    writer.write_lines(LINES)
    manifest = writer.commit(pages=1, fetched_at="2025-03-04T01:00:00")
    assert [p.path for p in manifest.parts] == [prefix + "part-00010.ndjson"]
    assert store.list(CONTAINER) == sorted(
        [
            prefix + "README.txt",
            prefix + "part-00042.ndjson",
            prefix + "part-00010.ndjson",
            rawzone.manifest_path(DAY),
        ]
    )


def test_manifest_round_trip_and_damage() -> None:
    manifest = Manifest(
        DAY,
        "run1",
        "2025-03-04T01:00:00",
        3,
        (PartInfo("date=2025-03-03/part-00001.ndjson", 5, "ab" * 32, 100),),
    )
    assert Manifest.from_json(manifest.to_json(), "x") == manifest
    with pytest.raises(DataError, match="re-run the fetch"):
        Manifest.from_json(b'{"day": "2025-03-03"}', "somewhere")
    with pytest.raises(DataError):
        Manifest.from_json(b"not json", "somewhere")


def test_no_manifest_means_no_partition(store: LocalFolderStore) -> None:
    store.write(CONTAINER, rawzone.part_path(DAY, 1), [b"{}\n"])
    assert rawzone.read_manifest(store, CONTAINER, DAY) is None


def test_part_checksums_are_of_the_stored_bytes(store: LocalFolderStore) -> None:
    manifest = write_day(store, LINES)
    part = manifest.parts[0]
    with store.open_read(CONTAINER, part.path) as handle:
        data = handle.read()
    assert data == b"".join(line + b"\n" for line in LINES)
    assert hashlib.sha256(data).hexdigest() == part.sha256
    assert part.bytes == len(data)


def test_records_per_part_must_be_positive(store: LocalFolderStore) -> None:
    with pytest.raises(DataError):
        PartitionWriter(store, CONTAINER, DAY, "run1", records_per_part=0)
