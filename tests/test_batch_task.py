"""The piece Data Factory calls: company_activity.batch_entry, as a Custom activity runs it.

The end-to-end test takes each Custom activity's command line and extendedProperties from
the pipeline JSON, substitutes run_date and the factory's global parameters (pointed at
local stand-ins: a DuckDB file, a local raw-zone folder, the mock API on loopback), writes
the activity.json a Batch task finds in its working directory, and runs the command in a real
subprocess. The stored-procedure activities between them run their sql/ files on the local
engine with the parameters the pipeline JSON binds. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from company_activity import batch_entry
from company_activity.azure import adf_graph, batch_task, procedures
from company_activity.cli import EXIT_TERMINAL
from company_activity.mock.api import MockApiConfig, MockApiServer
from company_activity.pipeline import names as steps
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

REPO = Path(__file__).resolve().parents[1]
PIPELINE = adf_graph.load_factory(REPO / "adf").pipeline(steps.PIPELINE_NAME)
GLOBALS = adf_graph.load_factory(REPO / "adf").global_parameters()
DAY = date(2025, 3, 3)
API_KEY = "batch-test-key-8c41"
SEED, COMPANIES = 11, 12


START_TASK = REPO / "azure_batch" / "start_task.sh"


def _start_task_python() -> str:
    text = START_TASK.read_text(encoding="utf-8")
    match = re.search(r'^VENV="\$PREFIX/venv"', text, re.MULTILINE)
    prefix = re.search(r'^PREFIX="\$\{COMPANY_ACTIVITY_PREFIX:-(\S+)\}"', text, re.MULTILINE)
    assert match and prefix
    return f"{prefix.group(1)}/venv/bin/python"


ENTRY = f"{_start_task_python()} -m company_activity.batch_entry"


# Expressions: just the forms the pipeline uses, evaluated like Data Factory would. ----------

_GLOBAL = re.compile(r"^pipeline\(\)\.globalParameters\.(\w+)$")


def _evaluate(term: str, globals_: dict[str, str]) -> str:
    term = term.strip()
    if term.startswith("'") and term.endswith("'"):
        return term[1:-1]
    match = _GLOBAL.match(term)
    if match:
        return globals_[match.group(1)]
    raise AssertionError(f"the test's evaluator does not know {term!r}")


def evaluate(value: str, globals_: dict[str, str], run_date: str) -> str:
    text = value.replace("@{pipeline().parameters.run_date}", run_date)
    text = text.replace("@{pipeline().RunId}", "adf-run-1")
    if not text.startswith("@"):
        assert "@{" not in text, f"unsupported interpolation in {value!r}"
        return text
    body = text[1:]
    if body.startswith("concat(") and body.endswith(")"):
        return "".join(_evaluate(t, globals_) for t in body[len("concat(") : -1].split(","))
    return _evaluate(body, globals_)


def custom_activities() -> list[dict[str, Any]]:
    by_name = {a["name"]: a for a in adf_graph.activities(PIPELINE)}
    order = adf_graph.dependency_order(adf_graph.activities(PIPELINE))
    return [by_name[n] for n in order if by_name[n]["type"] == "Custom"]


def test_every_custom_activity_runs_the_batch_entry_point_with_a_known_command() -> None:
    from company_activity.cli import build_parser

    parser = build_parser()
    names = []
    for activity in custom_activities():
        command = evaluate(activity["typeProperties"]["command"], {}, DAY.isoformat())
        assert command.startswith(ENTRY + " "), activity["name"]
        args = shlex.split(command[len(ENTRY) :])
        parsed = parser.parse_args(args)  # exits (fails the test) on an unknown command
        names.append(parsed.command)
        for key in activity["typeProperties"]["extendedProperties"]:
            assert key in batch_task.allowed_variables(), f"{activity['name']}: {key}"
    assert names == ["load-crm", "fetch", "load-usage", "validate"]


# The entry point's own rules -------------------------------------------------------------------


def _activity_json(workdir: Path, props: dict[str, Any]) -> None:
    (workdir / batch_task.ACTIVITY_FILE).write_text(
        json.dumps({"name": "x", "typeProperties": {"command": "x", "extendedProperties": props}}),
        encoding="utf-8",
    )


def test_extended_properties_become_settings(tmp_path: Path) -> None:
    _activity_json(tmp_path, {"API_URL": "http://127.0.0.1:1/usage", "SQL_USE_ACCESS_TOKEN": True})
    environ: dict[str, str] = {}
    batch_task.prepare_environment(tmp_path, environ)
    assert environ == {"API_URL": "http://127.0.0.1:1/usage", "SQL_USE_ACCESS_TOKEN": "true"}


def test_no_activity_json_leaves_the_environment_alone(tmp_path: Path) -> None:
    environ = {"A": "b"}
    assert batch_task.prepare_environment(tmp_path, environ) == {}
    assert environ == {"A": "b"}


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"API_KEY": "k"}, "secret setting"),
        ({"SQL_CONN_STR": "Driver=x"}, "secret setting"),
        ({"NOT_A_SETTING": "1"}, "unknown setting"),
        ({"API_URL": {"nested": 1}}, "plain value"),
    ],
)
def test_secrets_and_unknown_names_are_refused(
    tmp_path: Path, props: dict[str, Any], message: str
) -> None:
    _activity_json(tmp_path, props)
    with pytest.raises(batch_task.ConfigError, match=message):
        batch_task.prepare_environment(tmp_path, {})


def test_a_refused_activity_json_is_a_terminal_exit_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _activity_json(tmp_path, {"API_KEY": "k"})
    assert batch_entry.main(["status"], workdir=tmp_path) == EXIT_TERMINAL
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "k\n" not in err


# The day, end to end ---------------------------------------------------------------------------


def _run(workdir: Path, env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "company_activity.batch_entry", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_pipelines_command_lines_run_a_day_on_the_local_engine(tmp_path: Path) -> None:
    run_date = DAY.isoformat()
    workdir = tmp_path / "task"
    workdir.mkdir()
    duckdb_path = tmp_path / "warehouse.duckdb"
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("PATH", "HOME", "LANG", "LC_", "PYTHON", "VIRTUAL_ENV"))
    }
    # What the Batch pool gets from Key Vault in Azure comes from the environment here.
    env.update(
        {
            "DUCKDB_PATH": str(duckdb_path),
            "LOCAL_BLOB_DIR": str(tmp_path / "blob"),
            "API_KEY": API_KEY,
        }
    )
    setup = _run(workdir, env, ["init-db"])
    assert setup.returncode == 0, setup.stderr
    crm = _run(
        workdir,
        env,
        [
            "mock-api",
            "--no-serve",
            "--seed",
            str(SEED),
            "--companies",
            str(COMPANIES),
            "--crm-start",
            run_date,
            "--crm-end",
            run_date,
        ],
    )
    assert crm.returncode == 0, crm.stderr

    by_name = {a["name"]: a for a in adf_graph.activities(PIPELINE)}
    order = adf_graph.dependency_order(adf_graph.activities(PIPELINE))
    ran: list[str] = []
    config = MockApiConfig(seed=SEED, companies=COMPANIES, api_key=API_KEY)
    with MockApiServer(config) as server:
        local_globals = {name: str(spec["value"]) for name, spec in GLOBALS.items()}
        # Local stand-ins: no Key Vault, no Blob account (the local folder), the mock API.
        local_globals.update(
            {
                "api_url": server.url,
                "blob_account_url": "",
                "key_vault_name": "",
                "batch_identity_client_id": "",
            }
        )
        for name in order:
            activity = by_name[name]
            if activity["type"] == "Custom":
                props = {
                    k: evaluate(v, local_globals, run_date)
                    for k, v in activity["typeProperties"]["extendedProperties"].items()
                }
                (workdir / batch_task.ACTIVITY_FILE).write_text(
                    json.dumps(
                        {
                            "name": name,
                            "typeProperties": {
                                **activity["typeProperties"],
                                "extendedProperties": props,
                            },
                        }
                    ),
                    encoding="utf-8",
                )
                command = evaluate(activity["typeProperties"]["command"], local_globals, run_date)
                result = _run(workdir, env, shlex.split(command[len(ENTRY) :]))
                assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
                ran.append(name)
            elif activity["type"] == "SqlServerStoredProcedure":
                _run_procedure_locally(duckdb_path, activity, run_date)
                ran.append(name)
    assert ran == [n for n in order if by_name[n]["type"] in ("Custom", "SqlServerStoredProcedure")]

    with DuckDBWarehouse(duckdb_path) as wh:
        assert wh.scalar("SELECT COUNT(*) FROM stg.crm_companies") == COMPANIES
        assert wh.scalar("SELECT COUNT(*) FROM stg.product_usage") > 0
        rows = wh.scalar(
            "SELECT COUNT(*) FROM analytics.company_activity_daily "
            "WHERE activity_date = CAST(@d AS DATE) AND run_id = @run_id",
            {"d": DAY, "run_id": "adf-run-1"},
        )
        assert rows == wh.scalar("SELECT COUNT(*) FROM dim.companies") > 0
        # The Batch commands carry ADF's run id too, so every layer's rows trace to the run.
        for table in ("stg.crm_companies", "stg.product_usage"):
            assert wh.query(f"SELECT DISTINCT run_id FROM {table}") == [("adf-run-1",)]


def _run_procedure_locally(duckdb_path: Path, activity: dict[str, Any], run_date: str) -> None:
    """What the SqlServerStoredProcedure activity does, on the local engine: the procedure's
    source file with the parameters the pipeline binds (TriggerTime and RunId fixed)."""
    name = activity["typeProperties"]["storedProcedureName"]
    (procedure,) = [p for p in procedures.render_all() if p.qualified_name == name]
    values = {
        "@pipeline().parameters.run_date": date.fromisoformat(run_date),
        "@pipeline().RunId": "adf-run-1",
    }
    params: dict[str, Any] = {}
    for param, spec in activity["typeProperties"]["storedProcedureParameters"].items():
        expression = spec["value"]["value"]
        if "TriggerTime" in expression:
            params[param] = datetime(2025, 3, 4, 2, 0, 0)
        else:
            params[param] = values[expression]
    assert set(params) == set(procedure.parameters)
    with DuckDBWarehouse(duckdb_path) as wh:
        wh.execute(procedure.body, params)


# The pool's start task, run here for real (bash, venv, pip) with its prefix in tmp_path. --------
# Only two things on the node are stood in for: Microsoft's ODBC driver (a stub `odbcinst`
# answering the driver query) and, for the install, the dependencies' wheels: the test's
# wheelhouse holds the package's wheel, and the venv borrows the test environment's installed
# dependencies through a .pth line (no package index offline), as tests/test_packaging.py does.


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)


def _run_start_task(
    workdir: Path, prefix: Path, bin_dir: Path, python: str = "python3"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "AZ_BATCH_TASK_WORKING_DIR": str(workdir),
        "COMPANY_ACTIVITY_PREFIX": str(prefix),
        "PYTHON": python,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return subprocess.run(
        ["/bin/bash", str(START_TASK)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def node(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A task working directory, an install prefix and a bin/ with a working odbcinst."""
    workdir, prefix, bin_dir = tmp_path / "task", tmp_path / "opt", tmp_path / "bin"
    for folder in (workdir, bin_dir):
        folder.mkdir()
    _stub(bin_dir / "odbcinst", 'echo "[ODBC Driver 18 for SQL Server]"')
    return workdir, prefix, bin_dir


def _archive(workdir: Path, files: dict[str, bytes]) -> None:
    import io
    import tarfile

    with tarfile.open(workdir / "company-activity-wheelhouse.tar.gz", "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_the_start_task_refuses_a_python_older_than_3_11(node: tuple[Path, Path, Path]) -> None:
    workdir, prefix, bin_dir = node
    _archive(workdir, {"requirements.txt": b""})
    # What Ubuntu 22.04's python3 answers.
    _stub(
        bin_dir / "python3",
        'if [ "$1" = "-V" ]; then echo "Python 3.10.12"; exit 0; fi\nexit 1',
    )
    result = _run_start_task(workdir, prefix, bin_dir)
    assert result.returncode == 2
    assert "Python 3.10.12 is too old: company-activity needs Python 3.11 or later" in (
        result.stderr
    )
    assert "Ubuntu Server 24.04 LTS ships Python 3.12" in result.stderr
    assert not (prefix / "venv").exists()


def test_the_start_task_names_a_missing_python(node: tuple[Path, Path, Path]) -> None:
    workdir, prefix, bin_dir = node
    _archive(workdir, {"requirements.txt": b""})
    result = _run_start_task(workdir, prefix, bin_dir, python="python3.99-absent")
    assert result.returncode == 2 and "python3.99-absent not found" in result.stderr


def test_the_start_task_needs_its_wheelhouse_and_the_odbc_driver(
    node: tuple[Path, Path, Path],
) -> None:
    workdir, prefix, bin_dir = node
    missing = _run_start_task(workdir, prefix, bin_dir, python=sys.executable)
    assert missing.returncode == 2 and "company-activity-wheelhouse.tar.gz is missing" in (
        missing.stderr
    )
    _archive(workdir, {"README": b"not wheels"})
    not_wheels = _run_start_task(workdir, prefix, bin_dir, python=sys.executable)
    assert not_wheels.returncode == 2 and "is not a wheelhouse" in not_wheels.stderr
    _stub(bin_dir / "odbcinst", "exit 1")
    no_driver = _run_start_task(workdir, prefix, bin_dir, python=sys.executable)
    assert no_driver.returncode == 2 and "ODBC Driver 18 for SQL Server is not installed" in (
        no_driver.stderr
    )


@pytest.mark.slow
def test_the_start_task_installs_the_wheel_from_the_wheelhouse_without_an_index(
    node: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    workdir, prefix, bin_dir = node
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(wheels), str(REPO)),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("company_activity-*.whl")
    _archive(
        workdir,
        {
            wheel.name: wheel.read_bytes(),
            "requirements.txt": (REPO / "requirements.txt").read_bytes(),
        },
    )
    # python3 on the node, except that a new venv also sees the test's installed dependencies.
    import sysconfig

    # The test environment's packages, without its editable company_activity.
    deps = tmp_path / "dependencies"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "company_activity" not in entry.name.lower().replace("-", "_"):
            (deps / entry.name).symlink_to(entry)
    _stub(
        bin_dir / "python3",
        f'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
        f'  "{sys.executable}" "$@" || exit $?\n'
        '  dir="${@: -1}"\n'
        '  site=$("$dir/bin/python" -c '
        "'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])')\n"
        f'  echo "{deps}" > "$site/test-dependencies.pth"\n'
        "  exit 0\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"',
    )
    result = _run_start_task(workdir, prefix, bin_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    from company_activity import __version__

    assert __version__ in result.stdout  # the installed command answered --version
    python = prefix / "venv" / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import company_activity; print(company_activity.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    # Installed from the wheel into the venv, not editable from a checkout.
    assert where.startswith(str(prefix / "venv")), where
    assert not list((prefix / "venv").rglob("__editable__*"))
    assert (prefix / "wheelhouse" / wheel.name).is_file()
    # The activities' command lines name this interpreter (PREFIX's default on a node).
    assert _start_task_python() == "/opt/company-activity/venv/bin/python"
