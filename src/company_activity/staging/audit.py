"""ops.load_audits: one row per source, date and run, saying what a load read and wrote."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

from company_activity.warehouse.base import Warehouse
from company_activity.warehouse.schema import LOAD_AUDITS

SUCCEEDED = "succeeded"
FAILED = "failed"

_ERROR_MAX = LOAD_AUDITS.column("error_text").max_length or 4000


@dataclass(frozen=True)
class LoadResult:
    """The outcome of one staging load: what load_crm and load_usage return.

    For a succeeded load lines_read == lines_staged + lines_rejected, by construction: the
    load fails otherwise. checksum is the sha256 over the input files' bytes as stored, in
    the order read.
    """

    run_id: str
    source: str  # 'crm' or 'usage'
    file_date: date
    status: str  # 'succeeded' or 'failed'
    files_read: int
    lines_read: int
    lines_staged: int
    lines_rejected: int
    bytes_read: int
    checksum: str | None
    started_at: datetime
    ended_at: datetime
    error_text: str | None = None
    #: Staged rows with a field set to NULL because its value could not be read (crm:
    #: last_contact_at; the row's issue_* columns say which value and why).
    fields_nulled: int = 0

    @property
    def all_rejected(self) -> bool:
        """True when the load read records and staged none of them (a broken export)."""
        return self.status == SUCCEEDED and self.lines_read > 0 and self.lines_staged == 0

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def summary(self) -> str:
        """One line for people: what was read, staged and rejected."""
        if self.status != SUCCEEDED:
            return f"{self.file_date} {self.source}: failed: {self.error_text}"
        files = "1 file" if self.files_read == 1 else f"{self.files_read:,} files"
        lines = "1 line" if self.lines_read == 1 else f"{self.lines_read:,} lines"
        text = (
            f"{self.file_date} {self.source}: {files}, {lines} read, "
            f"{self.lines_staged:,} staged, {self.lines_rejected:,} rejected "
            f"({self.bytes_read / 1_000_000:.1f} MB, {self.seconds:.2f} s)"
        )
        if self.all_rejected:
            text += "; every record was rejected"
        if self.fields_nulled:
            text += (
                f"; {self.fields_nulled:,} staged with an unreadable field NULL "
                "(see the issue_* columns)"
            )
        if self.lines_rejected:
            text += (
                f"; see stg.quarantine where source = '{self.source}' "
                f"and file_date = '{self.file_date}'"
            )
        return text


def _value(column: str) -> str:
    return (
        f"CAST(@{column} AS DATE)"
        if LOAD_AUDITS.column(column).sql_type == "DATE"
        else f"@{column}"
    )


def write_audit(wh: Warehouse, result: LoadResult) -> None:
    """Record the result, replacing a row the same run wrote for the same source and date
    (a retried step reuses its run id)."""
    row = asdict(result)
    if row["error_text"] is not None:
        row["error_text"] = row["error_text"][:_ERROR_MAX]
    columns = LOAD_AUDITS.column_names
    with wh.transaction():
        wh.execute(
            "DELETE FROM ops.load_audits WHERE run_id = @run_id AND source = @source "
            "AND file_date = CAST(@file_date AS DATE)",
            {"run_id": result.run_id, "source": result.source, "file_date": result.file_date},
        )
        wh.execute(
            f"INSERT INTO ops.load_audits ({', '.join(columns)}) "
            f"VALUES ({', '.join(_value(c) for c in columns)})",
            {c: row[c] for c in columns},
        )
