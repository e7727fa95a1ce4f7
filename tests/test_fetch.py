"""Fetching dates into the raw zone: from the real local HTTP server (mock_api), the generator
and the sample file, through the library and the command line. Waits between attempts are
recorded instead of slept (api_client.sleep is patched)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from company_activity.cli import EXIT_TERMINAL, EXIT_TRANSIENT, main
from company_activity.commands.fetch import DEFAULT_SAMPLE, summary_line
from company_activity.dates import date_range
from company_activity.errors import DataError, TransientError
from company_activity.ingest import api_client, rawzone
from company_activity.ingest.fetch import (
    DayResult,
    SampleSource,
    fetch_day,
    fetch_days,
)
from company_activity.mock import data as mock_data
from company_activity.mock.source import GeneratorSource
from company_activity.pipeline.progress import Progress
from company_activity.storage import LocalFolderStore
from tests.ingestion_fixtures import (
    API_KEY,
    CONTAINER,
    DAY,
    SEED,
    client_for,
    mock_server,
    part_digests,
    partition_blobs,
    read_partition,
)

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"run_id": "run1", "fetched_at": "2025-03-04T01:00:00", "records_per_part": 7}


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(api_client, "sleep", waited.append)
    return waited


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "blob")


@pytest.mark.parametrize("pagination", ["pages", "cursor"])
def test_multi_page_day_lands_complete_and_exactly_once(
    pagination: str, store: LocalFolderStore
) -> None:
    with mock_server(pagination=pagination) as server, client_for(server) as client:
        result = fetch_day(client, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
    expected = mock_data.usage_lines(SEED, 25, DAY)
    assert read_partition(store, CONTAINER, DAY) == expected
    assert (result.records, result.pages, result.parts, result.retries) == (len(expected), 3, 4, 0)
    assert result.bytes == sum(len(line) + 1 for line in expected)
    manifest = rawzone.read_manifest(store, CONTAINER, DAY)
    assert manifest is not None and manifest.pages == 3 and manifest.run_id == "run1"


def test_rerun_leaves_the_same_set_of_blobs(store: LocalFolderStore) -> None:
    with mock_server(pagination="cursor") as server, client_for(server) as client:
        fetch_day(client, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
        first_blobs = partition_blobs(store, CONTAINER, DAY)
        first_parts = part_digests(store, CONTAINER, DAY)
        options = {**OPTIONS, "run_id": "run2"}
        fetch_day(client, store, CONTAINER, DAY, **options)  # type: ignore[arg-type]
    # Same parts (records and sha256), nothing stale left; only the part numbers moved on.
    assert part_digests(store, CONTAINER, DAY) == first_parts
    blobs = partition_blobs(store, CONTAINER, DAY)
    assert len(blobs) == len(first_blobs) == len(first_parts) + 1
    assert not set(blobs) & set(first_blobs) - {rawzone.manifest_path(DAY)}
    assert read_partition(store, CONTAINER, DAY) == mock_data.usage_lines(SEED, 25, DAY)
    manifest = rawzone.read_manifest(store, CONTAINER, DAY)
    assert manifest is not None and manifest.run_id == "run2"


@pytest.mark.parametrize("fault", ["noitems", "badjson", "500"])
def test_failed_rerun_leaves_the_previous_partition_intact(
    fault: str, store: LocalFolderStore
) -> None:
    with mock_server() as server, client_for(server) as client:
        fetch_day(client, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
        before = partition_blobs(store, CONTAINER, DAY)
        manifest = rawzone.read_manifest(store, CONTAINER, DAY)
        server.api.inject(fault, times=None, page=3)
        options = {**OPTIONS, "run_id": "run2"}
        with pytest.raises((DataError, TransientError), match="page 3"):
            fetch_day(client, store, CONTAINER, DAY, **options)  # type: ignore[arg-type]
    assert partition_blobs(store, CONTAINER, DAY) == before
    assert rawzone.read_manifest(store, CONTAINER, DAY) == manifest
    assert read_partition(store, CONTAINER, DAY) == mock_data.usage_lines(SEED, 25, DAY)


def test_malformed_page_leaves_no_manifest_for_a_new_day(store: LocalFolderStore) -> None:
    with mock_server() as server, client_for(server) as client:
        server.api.inject("baditem", times=None, page=2)
        with pytest.raises(DataError, match="date 2025-03-03 page 2"):
            fetch_day(client, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
    assert rawzone.read_manifest(store, CONTAINER, DAY) is None
    assert partition_blobs(store, CONTAINER, DAY) == []


def test_dates_are_independent_and_fetched_concurrently(
    store: LocalFolderStore, sleeps: list[float]
) -> None:
    days = date_range(DAY, DAY + timedelta(days=4))
    bad = DAY + timedelta(days=2)
    seen: list[date] = []
    with mock_server() as server, client_for(server) as client:
        server.api.inject("429", times=1, day=DAY + timedelta(days=1), retry_after="2")
        server.api.inject("noitems", times=None, day=bad)
        results = fetch_days(
            days,
            client,
            store,
            CONTAINER,
            concurrency=3,
            on_result=lambda r: seen.append(r.day),
            **OPTIONS,  # type: ignore[arg-type]
        )
    assert [r.day for r in results] == days
    assert sorted(seen) == days
    failed = [r for r in results if not r.ok]
    assert [r.day for r in failed] == [bad]
    assert "date 2025-03-05 page 1" in (failed[0].error or "")
    assert not failed[0].transient
    assert results[1].retries == 1
    # The 429's date waits its Retry-After; requests of other dates made within those 2 s wait
    # for what is left of it (the promise holds the whole client).
    assert sleeps.count(2.0) == 1 and all(0 < wait <= 2.0 for wait in sleeps)
    for result in results:
        if result.ok:
            lines = read_partition(store, CONTAINER, result.day)
            assert lines == mock_data.usage_lines(SEED, 25, result.day)
    assert rawzone.read_manifest(store, CONTAINER, bad) is None


def test_generator_source_matches_the_mock_api(store: LocalFolderStore) -> None:
    source = GeneratorSource(SEED, 25, page_size=10)
    result = fetch_day(source, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
    assert result.pages == 3
    assert read_partition(store, CONTAINER, DAY) == mock_data.usage_lines(SEED, 25, DAY)
    empty = fetch_day(GeneratorSource(SEED, 0), store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
    assert (empty.records, empty.pages, empty.parts) == (0, 1, 0)


def test_sample_source_serves_the_sample_by_date(tmp_path: Path, store: LocalFolderStore) -> None:
    shipped = SampleSource(DEFAULT_SAMPLE)
    fetch_day(shipped, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
    items = json.loads(DEFAULT_SAMPLE.read_text())["items"]
    assert [json.loads(x) for x in read_partition(store, CONTAINER, DAY)] == items

    sample = tmp_path / "sample.json"
    sample.write_text(
        '{"items": [{"company_id": "a", "date": "2025-03-03"}, {"company_id": "b"},\n'
        '  {"company_id": "c", "date": "2025-03-04"}], "next_page": null}'
    )
    source = SampleSource(sample)
    fetch_day(source, store, CONTAINER, DAY, **OPTIONS)  # type: ignore[arg-type]
    assert read_partition(store, CONTAINER, DAY) == [
        b'{"company_id": "a", "date": "2025-03-03"}',
        b'{"company_id": "b"}',
    ]
    broken = tmp_path / "broken.json"
    broken.write_text('{"items": 3}')
    with pytest.raises(DataError, match=r"broken\.json"):
        SampleSource(broken)
    with pytest.raises(DataError, match="--sample PATH"):
        SampleSource(tmp_path / "missing.json")


def test_date_range() -> None:
    assert date_range(DAY, DAY) == [DAY]
    assert len(date_range(date(2024, 1, 1), date(2024, 12, 31))) == 366
    with pytest.raises(DataError, match="before the start"):
        date_range(DAY, DAY - timedelta(days=1))


# --- command line ---------------------------------------------------------------------------


def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> list[str]:
    """Isolate the CLI: no .env, the raw zone under tmp_path; return the global options."""
    for name in ("BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME", "API_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "blob"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return ["--env-file", os.devnull]


def test_cli_mock_fetch_prints_one_line_per_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = cli_env(monkeypatch, tmp_path)
    code = main(
        [
            *options,
            "fetch",
            "--start",
            "2025-03-01",
            "--end",
            "2025-03-03",
            "--mock",
            "--companies",
            "30",
            "--crm",
            "--concurrency",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if "  ok  " in line]
    assert [line[:10] for line in lines] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    for field in ("records=", "pages=", "retries=", "bytes=", "seconds="):
        assert all(field in line for line in lines)
    store = LocalFolderStore(tmp_path / "blob")
    assert read_partition(store, CONTAINER, DAY) == mock_data.usage_lines(42, 30, DAY)
    assert store.exists("raw", "crm/crm_companies_2025-03-03.csv")


def test_cli_live_fetch_fails_naming_the_date_and_never_logs_the_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with mock_server() as server:
        # The key also sits in the URL, as with an Azure Functions ?code= key.
        url = f"{server.url}?code={API_KEY}"
        options = cli_env(
            monkeypatch,
            tmp_path,
            API_URL=url,
            API_KEY=API_KEY,
            API_PAGE_SIZE="10",
            API_MAX_ATTEMPTS="3",
        )
        server.api.inject("429", times=2, day=DAY, retry_after="1")
        server.api.inject("503", times=None, day=DAY + timedelta(days=1))
        server.api.inject("noitems", times=None, day=DAY + timedelta(days=2), page=2)
        caplog.set_level(logging.DEBUG)
        code = main(
            ["--verbose", *options, "fetch", "--start", "2025-03-03", "--end", "2025-03-05"]
        )
    captured = capsys.readouterr()
    assert code == EXIT_TERMINAL
    assert "2 of 3 date(s) failed: 2025-03-04, 2025-03-05" in captured.err
    assert "2025-03-03  ok" in captured.out
    assert "2025-03-04  FAILED" in captured.out and "gave up" in captured.out
    everything = captured.out + captured.err + caplog.text
    assert "retrying in" in everything  # the log did record the retries ...
    assert API_KEY not in everything  # ... and never the key
    assert API_KEY not in "".join(str(r.__dict__) for r in caplog.records)


def test_cli_exit_code_says_when_a_rerun_may_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_server() as server:
        options = cli_env(
            monkeypatch, tmp_path, API_URL=server.url, API_KEY=API_KEY, API_MAX_ATTEMPTS="2"
        )
        server.api.inject("500", times=None)
        code = main([*options, "fetch", "--start", "2025-03-03"])
    assert code == EXIT_TRANSIENT
    assert "failed: 2025-03-03" in capsys.readouterr().err


def test_cli_live_fetch_needs_the_api_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = cli_env(monkeypatch, tmp_path)
    assert main([*options, "fetch", "--start", "2025-03-03"]) == EXIT_TERMINAL
    err = capsys.readouterr().err
    assert "API_URL" in err and "API_KEY" in err and "Traceback" not in err


def test_seed_script_keeps_the_seed_interface(tmp_path: Path) -> None:
    env = {"LOCAL_BLOB_DIR": str(tmp_path / "blob"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "fetch_product_usage.py"),
            "--start",
            "2025-03-03",
            "--end",
            "2025-03-04",
            "--mock",
            "--sample",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("  ok  ") == 2
    store = LocalFolderStore(tmp_path / "blob")
    assert len(read_partition(store, CONTAINER, date(2025, 3, 4))) == 8


def test_progress_bar_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    progress = Progress("fetch", 3, screen)
    for day in date_range(DAY, DAY + timedelta(days=2)):
        progress.advance(ok=day != DAY)
    progress.close()
    assert "3/3 dates, 1 failed" in screen.getvalue()

    pipe = io.StringIO()
    quiet = Progress("fetch", 3, pipe)
    quiet.advance()
    quiet.close()
    assert pipe.getvalue() == ""


def test_summary_line() -> None:
    ok = DayResult(DAY, records=10, pages=2, retries=1, bytes=999, seconds=0.5, parts=1)
    assert summary_line(ok) == (
        "2025-03-03  ok      records=10  pages=2  retries=1  bytes=999  seconds=0.50"
    )
    failed = DayResult(DAY, pages=1, error="HTTP 401: check API_KEY")
    assert summary_line(failed).endswith("error: HTTP 401: check API_KEY")
    assert "FAILED" in summary_line(failed)
