"""Fetch product usage into the raw zone: one partition per date, each date on its own.

For each date the records stream from a page source (the API, the built-in generator or the
sample file) into part files as pages arrive, then the manifest is written, then the parts of
earlier runs are removed (rawzone.PartitionWriter). A date that fails leaves no trace of its
own: its new parts are deleted and the previous partition, if any, stays as it was.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Protocol

from company_activity.errors import DataError, PipelineError, TransientError
from company_activity.ingest.pages import FetchStats, Page, parse_page
from company_activity.ingest.rawzone import DEFAULT_RECORDS_PER_PART, PartitionWriter
from company_activity.redact import redact
from company_activity.storage.base import BlobStore

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 32


class PageSource(Protocol):
    """Where a day's pages come from: the API client, the generator or the sample file."""

    def pages(self, day: date, stats: FetchStats) -> Iterator[Page]: ...


@dataclass(frozen=True)
class DayResult:
    """What fetching one date did (error is None when it succeeded)."""

    day: date
    records: int = 0
    pages: int = 0
    retries: int = 0
    bytes: int = 0
    seconds: float = 0.0
    parts: int = 0
    error: str | None = None
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class SampleSource:
    """A saved API response (like samples/product_api_sample.json) served as one page.

    Items with a `date` field land only on that date; items without one land on every date.
    The file's next_page is ignored.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            body = self.path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"cannot read the sample file {self.path} ({exc.strerror}); pass --sample PATH "
                "or drop --sample to use the built-in generator"
            ) from None
        try:
            lines, _ = parse_page(body, date.min, 1)
        except DataError as exc:
            raise DataError(f"the sample file {self.path} is not an API page: {exc}") from None
        self._lines = [(line, _item_date(line)) for line in lines]

    def pages(self, day: date, stats: FetchStats) -> Iterator[Page]:
        wanted = day.isoformat()
        stats.pages += 1
        yield Page(1, [line for line, when in self._lines if when in (None, wanted)])


def _item_date(line: bytes) -> str | None:
    value = json.loads(line).get("date")
    return value if isinstance(value, str) else None


def _lines(pages: Iterable[Page]) -> Iterator[bytes]:
    for page in pages:
        yield from page.lines


def _fetch(
    source: PageSource,
    store: BlobStore,
    container: str,
    day: date,
    stats: FetchStats,
    *,
    run_id: str,
    fetched_at: str,
    records_per_part: int,
    gzipped: bool,
) -> tuple[int, int, int]:
    """Fetch one date; return (records, bytes, parts). Raises on failure, leaving no new parts."""
    writer = PartitionWriter(
        store, container, day, run_id, records_per_part=records_per_part, gzipped=gzipped
    )
    try:
        writer.write_lines(_lines(source.pages(day, stats)))
        manifest = writer.commit(stats.pages, fetched_at)
    except BaseException:
        writer.abort()
        raise
    return manifest.records, sum(p.bytes for p in manifest.parts), len(manifest.parts)


def fetch_day(
    source: PageSource,
    store: BlobStore,
    container: str,
    day: date,
    *,
    run_id: str,
    fetched_at: str,
    records_per_part: int = DEFAULT_RECORDS_PER_PART,
    gzipped: bool = False,
    stats: FetchStats | None = None,
) -> DayResult:
    """Fetch one date into its partition. Raises PipelineError when the date failed.

    `stats` (pages, retries) is filled as the fetch goes, so a caller still has it on failure.
    """
    stats = stats if stats is not None else FetchStats()
    started = time.perf_counter()
    records, size, parts = _fetch(
        source,
        store,
        container,
        day,
        stats,
        run_id=run_id,
        fetched_at=fetched_at,
        records_per_part=records_per_part,
        gzipped=gzipped,
    )
    log.info(
        "date %s: %d records, %d pages, %d parts, %d retries",
        day,
        records,
        stats.pages,
        parts,
        stats.retries,
    )
    return DayResult(
        day, records, stats.pages, stats.retries, size, time.perf_counter() - started, parts
    )


def _fetch_recorded(
    source: PageSource,
    store: BlobStore,
    container: str,
    day: date,
    *,
    run_id: str,
    fetched_at: str,
    records_per_part: int,
    gzipped: bool,
) -> DayResult:
    """Like fetch_day, but a failure becomes a DayResult with the error (dates are independent)."""
    stats = FetchStats()
    started = time.perf_counter()
    try:
        return fetch_day(
            source,
            store,
            container,
            day,
            run_id=run_id,
            fetched_at=fetched_at,
            records_per_part=records_per_part,
            gzipped=gzipped,
            stats=stats,
        )
    except PipelineError as exc:
        log.error("date %s failed: %s", day, exc)
        error, transient = redact(exc), isinstance(exc, TransientError)
    except Exception as exc:  # one date's surprise must not stop the others
        log.debug("date %s failed unexpectedly", day, exc_info=True)
        error = f"unexpected {type(exc).__name__}: {redact(exc)} (re-run with --verbose)"
        transient = False
        log.error("date %s failed: %s", day, error)
    return DayResult(
        day,
        pages=stats.pages,
        retries=stats.retries,
        seconds=time.perf_counter() - started,
        error=error,
        transient=transient,
    )


def fetch_days(
    days: Sequence[date],
    source: PageSource,
    store: BlobStore,
    container: str,
    *,
    run_id: str,
    fetched_at: str,
    concurrency: int = 1,
    records_per_part: int = DEFAULT_RECORDS_PER_PART,
    gzipped: bool = False,
    on_result: Callable[[DayResult], None] | None = None,
) -> list[DayResult]:
    """Fetch each date into its partition, `concurrency` dates at a time; results by date.

    A failed date does not stop the others: its result carries the error.
    """
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise DataError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")
    one_day = partial(
        _fetch_recorded,
        source,
        store,
        container,
        run_id=run_id,
        fetched_at=fetched_at,
        records_per_part=records_per_part,
        gzipped=gzipped,
    )
    results: list[DayResult] = []

    def done(result: DayResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    if concurrency == 1:
        for day in days:
            done(one_day(day))
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fetch") as pool:
            futures = [pool.submit(one_day, day) for day in days]
            try:
                for future in as_completed(futures):
                    done(future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return sorted(results, key=lambda r: r.day)
