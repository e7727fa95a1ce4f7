"""Stage a day of product usage: the raw-zone partition (or a list of NDJSON files) into
stg.product_usage, rejected lines into stg.quarantine, one audit row per load.

Each line must be a JSON object with a non-empty string company_id (at most 100 characters
once trimmed), active_users and events as non-negative integers (JSON integers or strings
holding one), a `date` equal to the partition's date when present, and a `ts` that is an
ISO-8601 timestamp when present (a missing or null ts stages with event_ts NULL). See
docs/staging.md for every reason a line can be rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from company_activity.dates import utc_now
from company_activity.errors import DataError
from company_activity.ingest.rawzone import read_manifest
from company_activity.staging.audit import LoadResult
from company_activity.staging.lines import FileReader, InputFile
from company_activity.staging.replace import Tally, replace_date
from company_activity.staging.rules import USAGE_CHECK_SQL, USAGE_EXACT_CHECK_SQL
from company_activity.staging.writer import BatchWriter, Target
from company_activity.storage.base import BlobStore
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.schema import PRODUCT_USAGE

USAGE = Target(
    "usage",
    PRODUCT_USAGE,
    "file_date",
    "raw_json",
    USAGE_CHECK_SQL,
    exact_check_sql=USAGE_EXACT_CHECK_SQL,
)


def load_usage(
    wh: Warehouse,
    store: BlobStore,
    day: date,
    *,
    container: str,
    run_id: str,
    clock: Callable[[], datetime] = utc_now,
) -> LoadResult:
    """Stage the partition `container/date=DAY/` as its manifest lists it.

    A day without a manifest is a DataError telling you to run the fetch; a partition whose
    parts disagree with the manifest (record count or sha256) fails the load.
    """

    def inputs() -> list[InputFile]:
        manifest = read_manifest(store, container, day)
        if manifest is None:
            raise DataError(
                f"no usage partition for {day} in {store.url(container, f'date={day}/')} "
                f"(no _manifest.json): run `company-activity fetch --start {day} --end {day}` "
                "first."
            )
        if manifest.day != day:
            raise DataError(
                f"the manifest for {day} describes {manifest.day}; re-run the fetch for {day}."
            )
        return [
            InputFile(
                name=f"{container}/{part.path}",
                open=partial(store.open_read, container, part.path),
                gzipped=part.path.endswith(".gz"),
                expected_records=part.records,
                expected_sha256=part.sha256,
            )
            for part in manifest.parts
        ]

    return load_usage_files(wh, day, inputs, run_id=run_id, clock=clock)


def load_usage_files(
    wh: Warehouse,
    day: date,
    inputs: Callable[[], Sequence[InputFile]] | Sequence[InputFile],
    *,
    run_id: str,
    clock: Callable[[], datetime] = utc_now,
) -> LoadResult:
    """Replace the usage rows of `day` with the lines of these files, read in order."""

    def produce(writer: BatchWriter, tally: Tally, params: Mapping[str, Any]) -> None:
        files = inputs() if callable(inputs) else inputs
        for source in files:
            file_params = {**params, "src_file_name": source.name}
            reader = FileReader(source, tally.digest)
            for batch in reader.batches():
                writer.write(batch, file_params)
            tally.files += 1
            tally.lines += reader.lines
            tally.bytes += reader.bytes
            _verify(source, reader.lines, reader.sha256, day)

    return replace_date(wh, USAGE, day, produce, run_id=run_id, clock=clock)


def _verify(source: InputFile, lines: int, sha256: str, day: date) -> None:
    if source.expected_records is not None and lines != source.expected_records:
        raise DataError(
            f"{source.name} has {lines} lines but its manifest lists {source.expected_records} "
            f"records; re-run the fetch for {day}."
        )
    if source.expected_sha256 is not None and sha256 != source.expected_sha256:
        raise DataError(
            f"{source.name} does not match the sha256 in its manifest (changed or damaged "
            f"after the fetch); re-run the fetch for {day}."
        )


def local_file(path: Path, name: str) -> InputFile:
    """An NDJSON file on local disk as an input (gzipped when it ends in .gz)."""

    def opener() -> BinaryIO:
        try:
            return path.open("rb")
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror}") from None

    return InputFile(name=name, open=opener, gzipped=path.name.endswith(".gz"))
