"""The package as a user installs it: a built wheel in a fresh venv, used from another folder.

The wheel is built with the real build backend (hatchling, from requirements-dev.txt) and
installed without `-e` into a new virtual environment. Only the package's dependencies are
borrowed from the test environment (a .pth line naming its site-packages), so nothing of the
checkout (src/, sql/) is importable there: the run proves the wheel carries what it needs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import company_activity

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("company_activity-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (no -e); returns its bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies only: the test environment's own site-packages, after the venv's.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "borrowed_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    return env_dir / "bin"


def test_wheel_carries_the_sql_and_the_licence(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for sql in (ROOT / "sql").rglob("*.sql"):
        assert f"company_activity/sql/{sql.relative_to(ROOT / 'sql').as_posix()}" in names
    assert any(re.search(r"\.dist-info/licenses/LICENSE$", n) for n in names)
    assert "company_activity/py.typed" in names


def test_installed_wheel_runs_init_db_and_a_day_from_another_folder(
    installed: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("API_", "BLOB_", "SQL_", "KEY_VAULT", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "DUCKDB_PATH": str(tmp_path / "wh" / "warehouse.duckdb"),
            "LOCAL_BLOB_DIR": str(tmp_path / "blob"),
            "PATH": f"{installed}:{env.get('PATH', '')}",
        }
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed / "company-activity"), *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    where = subprocess.run(
        [str(installed / "python"), "-c", "import company_activity as c; print(c.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.parent)), where

    version = cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"company-activity {company_activity.__version__}"

    init = cli("init-db")
    assert init.returncode == 0, init.stderr
    day = cli("run", "--mock", "--date", "2025-11-23", "--companies", "20")
    assert day.returncode == 0, day.stderr
    assert "2025-11-23" in day.stdout + day.stderr

    import duckdb

    con = duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb"), read_only=True)
    try:
        (rows,) = con.execute(
            "SELECT COUNT(*) FROM analytics.company_activity_daily WHERE activity_date = ?",
            ["2025-11-23"],
        ).fetchone() or (0,)
        (companies,) = con.execute("SELECT COUNT(*) FROM dim.companies").fetchone() or (0,)
    finally:
        con.close()
    assert rows == companies > 0


def test_pyproject_dependencies_match_the_pins() -> None:
    """Every declared dependency is pinned in requirements.txt, inside its declared range."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    declared = [Requirement(d) for d in project["dependencies"]]
    assert {r.name.lower() for r in declared} == set(pins)
    for req in declared:
        assert req.specifier.contains(pins[req.name.lower()]), (req, pins[req.name.lower()])
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
