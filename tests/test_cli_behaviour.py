"""What users expect of the command line (issue 12).

Global options before or after the command; a named --env-file must exist; errors no retry
can fix exit 2 with one line saying what to do, only transient ones 75; the read-only commands
never create a warehouse or folders and open it read-only; options that cannot go together
are an error, not a silent choice; a closed pipe ends quietly; every command's help has an
example. Real DuckDB files and real subprocesses throughout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from company_activity.cli import EXIT_BROKEN_PIPE, build_parser, main
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[1]
DAY = "2025-03-03"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's settings rooted in tmp_path/home (nothing created there yet); returns it."""
    for name in ("BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME", "API_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("DUCKDB_PATH", str(home / "w.duckdb"))
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(home / "blob"))
    monkeypatch.chdir(tmp_path)  # no .env here
    return home


def _cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "BLOB_", "SQL_"))}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "company_activity", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# Global options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--verbose", "--env-file", os.devnull, "--run-id", "adf-1", "status"],
        ["status", "--verbose", "--env-file", os.devnull, "--run-id", "adf-1"],
        ["-v", "--env-file", os.devnull, "status", "--run-id", "adf-1"],
    ],
)
def test_global_options_go_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.env_file, args.run_id) == (True, os.devnull, "adf-1")


def test_global_options_left_out_keep_their_defaults() -> None:
    args = build_parser().parse_args(["status"])
    assert (args.verbose, args.env_file, args.run_id) == (False, None, None)


def test_env_file_and_run_id_after_the_command_take_effect(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "from-env-file.duckdb"
    env_file = tmp_path / "other.env"
    env_file.write_text(f"DUCKDB_PATH={warehouse}\n")
    monkeypatch.delenv("DUCKDB_PATH")
    assert main(["init-db", "--env-file", str(env_file)]) == 0
    run = ["run", "--mock", "--companies", "5", "--date", DAY]
    assert main([*run, "--env-file", str(env_file), "--run-id", "adf-run-7"]) == 0
    assert not (env / "w.duckdb").exists()
    wh = DuckDBWarehouse(warehouse, read_only=True)
    try:
        assert wh.query("SELECT run_id FROM ops.pipeline_runs") == [("adf-run-7",)]
    finally:
        wh.close()


def test_verbose_after_the_command_shows_the_traceback(env: Path, tmp_path: Path) -> None:
    (tmp_path / "not.duckdb").write_text("not a database\n" * 100)
    result = _cli("init-db", "--verbose", cwd=tmp_path, DUCKDB_PATH=str(tmp_path / "not.duckdb"))
    assert result.returncode == 2
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_env_file_that_does_not_exist_is_an_error(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    missing = str(tmp_path / "typo.env")
    argv = (
        ["--env-file", missing, "status"]
        if where == "before"
        else ["status", "--env-file", missing]
    )
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert f"{missing} is not a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--env-file", str(tmp_path), "status"])  # a folder is not a dotenv file either


# Errors no retry can fix, and the one that a retry can ----------------------------------------


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write: chmod where that binds, else sysfs (root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").write_text("x")
    except PermissionError:
        return folder
    (folder / "probe").unlink()
    return Path("/sys")  # root ignores modes; sysfs refuses new files even to root


def test_a_read_only_folder_exits_2_saying_what_to_do(env: Path, tmp_path: Path) -> None:
    folder = _read_only_folder(tmp_path)
    for path in (folder / "w.duckdb", folder / "sub" / "w.duckdb"):
        result = _cli("init-db", cwd=tmp_path, DUCKDB_PATH=str(path))
        assert result.returncode == 2, result.stderr
        line = _one_line(result.stderr)
        assert str(path) in line and "make its folder writable" in line


def test_a_read_only_raw_zone_exits_2_saying_what_to_do(env: Path, tmp_path: Path) -> None:
    folder = _read_only_folder(tmp_path)
    assert main(["init-db"]) == 0
    result = _cli(
        "fetch",
        "--mock",
        "--start",
        DAY,
        cwd=tmp_path,
        DUCKDB_PATH=str(env / "w.duckdb"),
        LOCAL_BLOB_DIR=str(folder / "blob"),
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "LOCAL_BLOB_DIR" in result.stderr


def test_a_file_that_is_not_a_duckdb_database_exits_2(env: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("these are my notes, not a warehouse\n" * 200)
    for command in (["init-db"], ["status"], ["validate", "--date", DAY]):
        result = _cli(*command, cwd=tmp_path, DUCKDB_PATH=str(bogus))
        assert result.returncode == 2, (command, result.stderr)
        line = _one_line(result.stderr)
        assert "is not a DuckDB database file" in line and "DUCKDB_PATH" in line
    assert bogus.read_text().startswith("these are my notes")


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--mock", "--date", DAY],
        ["merge", "--start", DAY],
        ["load-crm", "--date", DAY],
        ["load-usage", "--start", DAY],
        ["rollback", "--date", DAY],
        ["validate", "--date", DAY],
        ["report", "--start", DAY, "--end", DAY],
    ],
)
def test_a_schema_not_yet_created_exits_2_with_init_db_first(
    env: Path, tmp_path: Path, command: list[str]
) -> None:
    import duckdb

    env.mkdir()
    duckdb.connect(str(env / "w.duckdb")).close()  # a DuckDB file with no schema
    result = _cli(*command, cwd=tmp_path, DUCKDB_PATH=str(env / "w.duckdb"))
    assert result.returncode == 2, result.stderr
    assert _one_line(result.stderr).endswith("run `company-activity init-db` first")


def test_a_warehouse_another_process_is_writing_is_transient(env: Path, tmp_path: Path) -> None:
    assert main(["init-db"]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(env / "w.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = _cli("merge", "--start", DAY, cwd=tmp_path, DUCKDB_PATH=str(env / "w.duckdb"))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 75, result.stderr
    assert "in use by another process" in _one_line(result.stderr)


# Read-only commands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["status"], ["validate", "--date", DAY], ["report", "--start", DAY, "--end", DAY]]
)
def test_read_only_commands_never_create_a_warehouse_or_folders(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    argv = [*command, "--out", str(tmp_path / "report")] if command[0] == "report" else command
    assert main(argv) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"error: no warehouse at {env}")
    assert not env.exists()
    assert not (tmp_path / "report").exists()


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture
def loaded(env: Path) -> Iterator[Path]:
    assert main(["init-db"]) == 0
    assert main(["run", "--mock", "--companies", "8", "--date", DAY]) == 0
    yield env


@pytest.mark.parametrize(
    "command", [["status"], ["validate", "--date", DAY], ["report", "--start", DAY, "--end", DAY]]
)
def test_read_only_commands_open_the_warehouse_read_only(
    loaded: Path, tmp_path: Path, command: list[str]
) -> None:
    """They run beside another read-only reader (a writer would need the lock to itself) and
    leave the file exactly as it was."""
    before = _files(loaded)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True);"
            " print('reading', flush=True); time.sleep(60)",
            str(loaded / "w.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        argv = [*command, "--out", str(tmp_path / "r")] if command[0] == "report" else command
        result = _cli(*argv, cwd=tmp_path, DUCKDB_PATH=str(loaded / "w.duckdb"))
    finally:
        reader.kill()
        reader.wait()
    assert result.returncode == 0, result.stderr
    assert _files(loaded) == before


# Options that cannot go together ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["run", "--date", DAY, "--end", DAY], "--date and --end cannot be used together"),
        (["run", "--date", DAY, "--seed", "3"], "--seed works only with --mock"),
        (["run", "--date", DAY, "--companies", "3"], "--companies works only with --mock"),
        (["run", "--date", DAY, "--faults", "429=0.5"], "--faults works only with --mock"),
        (["fetch", "--start", DAY, "--seed", "3"], "--seed works only with --mock"),
        (
            ["fetch", "--start", DAY, "--sample", "--companies", "3"],
            "--sample and --companies cannot be used together",
        ),
        (["fetch", "--start", DAY, "--crm"], "--crm works with the generator only"),
        (
            ["load-usage", "--path", ".", "--start", DAY],
            "--path and --start cannot be used together",
        ),
        (["load-usage", "--path", ".", "--end", DAY], "--path and --end cannot be used together"),
        (["load-usage", "--end", DAY], "--end works only with --start"),
        (["mock-api", "--no-serve"], "--no-serve works only with --crm-start"),
        (["mock-api", "--crm-end", DAY], "--crm-end needs --crm-start"),
    ],
)
def test_options_that_cannot_go_together_are_an_error(
    env: Path, capsys: pytest.CaptureFixture[str], command: list[str], message: str
) -> None:
    assert main(command) == 2
    assert message in _one_line(capsys.readouterr().err)
    assert not env.exists()  # refused before anything was opened


# A closed pipe ----------------------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly(loaded: Path, tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (`status | head -0`)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "company_activity", "status"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            timeout=120,
            env={**os.environ, "DUCKDB_PATH": str(loaded / "w.duckdb")},
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == EXIT_BROKEN_PIPE


def test_a_report_cut_short_by_its_reader_still_writes_its_files(
    loaded: Path, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    report = ["report", "--start", DAY, "--end", DAY, "--out", str(tmp_path / "r")]
    try:
        subprocess.run(
            [sys.executable, "-m", "company_activity", *report],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            timeout=120,
            env={**os.environ, "DUCKDB_PATH": str(loaded / "w.duckdb")},
            check=False,
        )
    finally:
        os.close(write_end)
    assert (tmp_path / "r" / "report.md").is_file()


# Help -------------------------------------------------------------------------------------------


def _commands() -> dict[str, str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return {name: sub.format_help() for name, sub in action.choices.items()}  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_help_says_what_it_does_with_an_example(name: str) -> None:
    text = _commands()[name]
    examples = [
        line.strip().split("  #")[0].split(" > ")[0].split()
        for line in text.splitlines()
        if line.startswith("    company-activity ")
    ]
    assert examples, f"`company-activity {name} --help` has no example"
    description = text.split("\n\n")[1]
    assert len(description.split()) >= 5, description
    for example in examples:
        assert example[1] == name, example
        build_parser().parse_args(example[1:])  # each example parses (SystemExit fails)
