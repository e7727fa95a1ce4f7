"""Stage a CRM snapshot: one CSV export into stg.crm_companies, bad records into the quarantine.

The file is `{CRM_BLOB_PATH}crm_companies_YYYY-MM-DD.csv` in the raw zone, or any local file
with the snapshot date given. How it is written (encoding, delimiter, header names, date
formats) is a CrmFormat from the CRM_* settings. A required column missing from the header
fails the load and names the column; a bad record (blank id, more fields than the header, a
value too long for its column, a file_date not the snapshot's, malformed quoting, bytes the
encoding cannot decode) goes to the quarantine. An unreadable last_contact_at stages the
company with it NULL and says why in the row's issue_* columns. Duplicate ids stay in staging
with their line numbers: the dimension MERGE keeps the last.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from company_activity.dates import utc_now
from company_activity.errors import DataError
from company_activity.ingest.rawzone import crm_file_name, crm_location
from company_activity.staging.audit import LoadResult
from company_activity.staging.csvfile import record_batches
from company_activity.staging.csvformat import CrmFormat
from company_activity.staging.lines import HashingReader
from company_activity.staging.replace import Tally, replace_date
from company_activity.staging.rules import crm_check_sql
from company_activity.staging.writer import BatchWriter, Target
from company_activity.storage.base import BlobStore
from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.schema import CRM_COMPANIES


def crm_target(fmt: CrmFormat) -> Target:
    """Where CRM rows land and the rules they are checked with (dates per the format)."""
    return Target(
        "crm",
        CRM_COMPANIES,
        "snapshot_date",
        "raw_line",
        crm_check_sql(fmt.date_formats),
        issue_column="issue_field",
    )


_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def snapshot_date_from_name(name: str) -> date | None:
    """The YYYY-MM-DD in a file name such as crm_companies_2025-11-23.csv, if any."""
    match = _DATE_IN_NAME.search(Path(name).name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def snapshot_date_from_column(file: Path, fmt: CrmFormat | None = None) -> date | None:
    """The date in the export's file_date column (the seed's format), when every record that
    fills it holds the same YYYY-MM-DD; else None. Unreadable files give None too: the load
    itself reports what is wrong with them."""
    values: set[str | None] = set()
    try:
        with file.open("rb") as stream:
            header, batches = record_batches(stream, str(file), fmt)
            if "file_date" not in header.positions:
                return None
            for batch in batches:
                values.update(v.strip() for v in batch["f_file_date"].to_pylist() if v)
    except (OSError, DataError):
        return None
    if len(values) != 1:
        return None
    try:
        return date.fromisoformat(str(values.pop()))
    except ValueError:
        return None


def load_crm(
    wh: Warehouse,
    store: BlobStore,
    day: date,
    *,
    crm_blob_path: str,
    run_id: str,
    file: Path | None = None,
    clock: Callable[[], datetime] = utc_now,
    fmt: CrmFormat | None = None,
) -> LoadResult:
    """Replace the CRM snapshot of `day` in staging with the raw zone's file (or `file`).

    `fmt` says how the export is written (default: CrmFormat(), the settings' defaults).
    """
    fmt = fmt or CrmFormat()

    def open_input() -> tuple[str, IO[bytes]]:
        if file is not None:
            try:
                return str(file), file.open("rb")
            except OSError as exc:
                raise DataError(f"cannot read CRM file {file}: {exc.strerror}") from None
        container, prefix = crm_location(crm_blob_path)
        path = prefix + crm_file_name(day)
        if not store.exists(container, path):
            raise DataError(
                f"no CRM snapshot for {day}: expected {store.url(container, path)}. Put the "
                f"export there, or load a file with `company-activity load-crm --date {day} "
                "--file PATH`."
            )
        return f"{container}/{path}", store.open_read(container, path)

    def produce(writer: BatchWriter, tally: Tally, params: Mapping[str, Any]) -> None:
        name, stored = open_input()
        tally.files = 1
        with stored:
            hashing = HashingReader(stored, tally.digest)
            header, batches = record_batches(hashing, name, fmt)  # type: ignore[arg-type]
            file_params = {
                **params,
                "src_file_name": name,
                "header_fields": header.width,
                **{f"date_format_{i}": f for i, f in enumerate(fmt.date_formats)},
            }
            for batch in batches:
                writer.write(batch, file_params)
                tally.lines += batch.num_rows
            tally.bytes = hashing.bytes

    return replace_date(wh, crm_target(fmt), day, produce, run_id=run_id, clock=clock)
