"""Replace one source's staging and quarantine rows for one date in one transaction.

The date's old rows are deleted, the input is checked and written batch by batch, and the
counts are proved before anything commits: lines read must equal the rows now in staging plus
the rows now in the quarantine for that date, or the load fails and nothing is committed. A
succeeded audit row commits with the data; a failed one is written in its own transaction after
the rollback, so the failure stays visible.

Call it outside any open transaction: nested in one, the rollback and the failure row would
belong to the caller's transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from company_activity.errors import ConfigError, DataError, PipelineError
from company_activity.redact import redact
from company_activity.staging.audit import FAILED, SUCCEEDED, LoadResult, write_audit
from company_activity.staging.writer import BatchWriter, Target
from company_activity.warehouse.base import Warehouse

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """What a load has read so far: files, lines (records), bytes and their running sha256."""

    files: int = 0
    lines: int = 0
    bytes: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


#: Reads the inputs and hands each batch to the writer: produce(writer, tally, params).
Produce = Callable[[BatchWriter, Tally, Mapping[str, Any]], None]


def replace_date(
    wh: Warehouse,
    target: Target,
    day: date,
    produce: Produce,
    *,
    run_id: str,
    clock: Callable[[], datetime],
) -> LoadResult:
    """Run one load of `target` for `day`; return its audit, or raise after auditing a failure."""
    missing = wh.missing_tables((target.table.name, "stg.quarantine", "ops.load_audits"))
    if missing:
        raise ConfigError(
            f"table {missing[0]} does not exist; run `company-activity init-db` first."
        )
    started = clock()
    tally = Tally()
    params = {
        "file_date": day,
        "file_date_text": day.isoformat(),
        "run_id": run_id,
        "loaded_at": started,
    }
    try:
        with wh.transaction(target.table.name):  # one writer of a staging table at a time
            _delete_date(wh, target, day)
            writer = BatchWriter(wh, target)
            try:
                produce(writer, tally, params)
            finally:
                writer.close()
            staged, rejected = _counts(wh, target, day)
            if tally.lines != staged + rejected:
                raise DataError(
                    f"{target.source} load of {day} does not balance: {tally.lines} lines read "
                    f"but {staged} staged + {rejected} rejected; nothing was committed. "
                    "Report this as a bug with the input files."
                )
            nulled = _nulled(wh, target, day)
            result = _result(
                run_id, target, day, tally, started, clock(), SUCCEEDED, staged, rejected, nulled
            )
            write_audit(wh, result)
    except Exception as exc:
        failed = _result(run_id, target, day, tally, started, clock(), FAILED, 0, 0, 0, redact(exc))
        try:
            write_audit(wh, failed)
        except PipelineError as audit_error:
            log.warning(
                "could not record the failed %s load of %s: %s", target.source, day, audit_error
            )
        raise
    log.info("%s", result.summary())
    return result


def _delete_date(wh: Warehouse, target: Target, day: date) -> None:
    wh.execute(
        f"DELETE FROM {target.table.name} WHERE {target.date_column} = CAST(@file_date AS DATE)",
        {"file_date": day},
    )
    wh.execute(
        "DELETE FROM stg.quarantine "
        "WHERE source = @source AND file_date = CAST(@file_date AS DATE)",
        {"source": target.source, "file_date": day},
    )


def _counts(wh: Warehouse, target: Target, day: date) -> tuple[int, int]:
    rows = wh.query(
        f"SELECT (SELECT COUNT(*) FROM {target.table.name} "
        f"WHERE {target.date_column} = CAST(@file_date AS DATE)), "
        "(SELECT COUNT(*) FROM stg.quarantine "
        "WHERE source = @source AND file_date = CAST(@file_date AS DATE))",
        {"source": target.source, "file_date": day},
    )
    staged, rejected = rows[0]
    return int(staged or 0), int(rejected or 0)


def _nulled(wh: Warehouse, target: Target, day: date) -> int:
    """Staged rows of the date with a field NULL because its value could not be read."""
    if not target.issue_column:
        return 0
    count = wh.scalar(
        f"SELECT COUNT({target.issue_column}) FROM {target.table.name} "
        f"WHERE {target.date_column} = CAST(@file_date AS DATE)",
        {"file_date": day},
    )
    return int(count or 0)


def _result(
    run_id: str,
    target: Target,
    day: date,
    tally: Tally,
    started: datetime,
    ended: datetime,
    status: str,
    staged: int,
    rejected: int,
    nulled: int,
    error_text: str | None = None,
) -> LoadResult:
    return LoadResult(
        run_id=run_id,
        source=target.source,
        file_date=day,
        status=status,
        files_read=tally.files,
        lines_read=tally.lines,
        lines_staged=staged,
        lines_rejected=rejected,
        bytes_read=tally.bytes,
        checksum=tally.digest.hexdigest() if tally.files or status == SUCCEEDED else None,
        started_at=started,
        ended_at=ended,
        error_text=error_text,
        fields_nulled=nulled,
    )
