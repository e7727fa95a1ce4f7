"""The docs stay true: every command they show parses, every Python snippet compiles, every
step that creates `.env` makes it private, and what docs/rollback.md and the README say about
the run log and the report holds on a real warehouse.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from company_activity.cli import build_parser, main
from company_activity.pipeline.report import build_report
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAM = "company-activity"

# Where a command line ends inside a shell line or a sentence.
_END = re.compile(r"\s+(?:#|\||&&|;|>|2>|&(?:\s|$))|`|\)(?:\s|$|[.,;:])")
_PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z0-9_-]*|\$\S+|<[^>]*>?|\S*YYYY\S*|\.\.\.)$")
_VALUES: dict[object, str] = {}


def _fenced_lines(text: str) -> Iterator[str]:
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S):
        yield from block.replace("\\\n", " ").splitlines()


def command_lines(path: Path) -> list[str]:
    """Every `company-activity ...` command in a Markdown file: in code blocks and code spans."""
    text = path.read_text(encoding="utf-8")
    found: list[str] = []
    for line in _fenced_lines(text):
        for match in re.finditer(rf"(?<![\w/-]){PROGRAM}\s+\S.*", line):
            found.append(_END.split(match.group(0))[0])
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if span.startswith(f"{PROGRAM} "):
            found.append(_END.split(span)[0])
    return [line.strip() for line in found]


def _value_for(action: argparse.Action | None) -> str:
    kind = getattr(action, "type", None)
    name = getattr(kind, "__name__", "")
    if name == "iso_date":
        return "2025-11-01"
    if name == "_env_file":
        return os.devnull
    if kind in (int, float) or name in ("_positive",):
        return "1"
    return "x"


def to_argv(line: str, parser: argparse.ArgumentParser) -> list[str]:
    """The command's arguments with placeholders (D, PATH, [--x], ...) filled in by type."""
    tokens = line.replace("[", " ").replace("]", " ").split()[1:]
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert isinstance(commands, dict)
    sub = commands.get(tokens[0]) if tokens else None
    argv: list[str] = []
    for token in tokens:
        if not _PLACEHOLDER.match(token):
            argv.append(token.strip("\"'"))
            continue
        if not argv:  # `company-activity COMMAND --help`: any command
            argv.append("status")
            continue
        previous = argv[-1]
        action = None
        for candidate in (sub, parser):
            if candidate is not None and previous.startswith("-"):
                action = candidate._option_string_actions.get(previous) or action
        if token == "..." and (action is None or action.nargs == 0):
            continue  # "[PATH ...]": more of the same
        argv.append(_value_for(action))
    return argv


def _all_command_lines() -> list[tuple[str, str]]:
    return [(str(p.relative_to(ROOT)), line) for p in DOCS for line in command_lines(p)]


def test_the_docs_show_many_commands() -> None:
    lines = _all_command_lines()
    assert len(lines) > 60
    commands = {to_argv(line, build_parser())[0] for _, line in lines}
    assert {"run", "init-db", "status", "validate", "report", "rollback", "fetch"} <= commands


@pytest.mark.parametrize(("doc", "line"), _all_command_lines())
def test_every_documented_command_line_parses(doc: str, line: str) -> None:
    parser = build_parser()
    argv = to_argv(line, parser)
    if len(argv) == 1:  # the command named in a sentence: it must exist
        assert argv[0] in _command_names(parser), f"{doc}: `{line}` names no command"
        return
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse: unknown option, bad value, missing argument
        if exc.code != 0:  # 0: --help
            pytest.fail(f"{doc}: `{line}` does not parse ({argv}): exit {exc.code}")


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert isinstance(choices, dict)
    return set(choices)


def test_the_extractor_rejects_an_unknown_flag() -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(to_argv("company-activity run --date D --no-such-flag", parser))


# Python snippets ------------------------------------------------------------------------------


def python_snippets(text: str) -> Iterator[str]:
    """```python blocks, `python - <<'EOF'` heredocs and `python -c "..."` arguments."""
    yield from re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    yield from re.findall(r"python3? - <<'?(\w+)'?\n(.*?)^\1$", text, re.M | re.S)
    yield from (m[1] for m in re.findall(r"python3? -c ([\"'])(.*?)\1", text, re.S))


def _snippets() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for snippet in python_snippets(path.read_text(encoding="utf-8")):
            code = snippet[1] if isinstance(snippet, tuple) else snippet
            found.append((str(path.relative_to(ROOT)), code))
    return found


@pytest.mark.parametrize(("doc", "code"), _snippets())
def test_every_python_snippet_compiles(doc: str, code: str) -> None:
    compile(code, doc, "exec")


def test_a_python_c_snippet_with_a_line_break_in_a_string_is_caught() -> None:
    broken = """python -c "print('a\nb')" """
    (code,) = [c for c in python_snippets(broken) if isinstance(c, str)]
    with pytest.raises(SyntaxError):
        compile(code, "broken", "exec")


# .env is private --------------------------------------------------------------------------------

_WRITES_ENV = re.compile(
    r"(?:\bcp\b|\bmv\b|\binstall\b|(?<!-)>|\btee\b|open\(|write_text).*\.env\b"
)


def _shell_and_docs() -> Iterator[tuple[Path, int, str]]:
    files = [*DOCS, ROOT / "run_once.sh", ROOT / "run_tests.sh", ROOT / ".ci" / "run"]
    files += [*(ROOT / "scripts").glob("*"), *(ROOT / "azure_batch").glob("*")]
    files += [*(ROOT / "src").rglob("*.py")]
    for path in files:
        if path.is_file():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                yield path, number, line


def test_every_step_that_creates_dotenv_makes_it_private() -> None:
    creating = [
        (path, number, line)
        for path, number, line in _shell_and_docs()
        if _WRITES_ENV.search(line) and not re.search(r"\.env\.template\S*\s*$", line)
    ]
    assert creating, "README should say how to create .env"
    for path, number, line in creating:
        assert re.search(r"install -m 0?600|chmod 0?600|umask 0?077|0o600", line), (
            f"{path.relative_to(ROOT)}:{number} creates .env readable by others: {line.strip()}"
        )


def test_the_readme_step_creates_dotenv_with_mode_600(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (step,) = re.findall(r"`(install -m 600 \.env\.template \.env)`", text)
    (tmp_path / ".env.template").write_bytes((ROOT / ".env.template").read_bytes())
    subprocess.run(step, shell=True, cwd=tmp_path, check=True)  # noqa: S602 - the doc's own line
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


# docs/rollback.md: the run log after a rollback and a step-by-step rebuild -------------------

DAY = "2025-03-03"


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BLOB_CONN_STR", "BLOB_ACCOUNT_URL", "KEY_VAULT_NAME", "API_URL", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("LOCAL_BLOB_DIR", str(tmp_path / "blob"))
    monkeypatch.chdir(tmp_path)
    assert main(["init-db"]) == 0
    return tmp_path / "w.duckdb"


def _run_says(capsys: pytest.CaptureFixture[str], day: str) -> str:
    assert main(["run", "--mock", "--companies", "6", "--date", day]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(day))
    return "skipped" if "skipped" in line else "ran"


def test_rollback_doc_step_by_step_leaves_the_date_pending_until_a_run(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "docs" / "rollback.md").read_text(encoding="utf-8")
    assert "the date stays pending" in text
    assert _run_says(capsys, DAY) == "ran"
    assert _run_says(capsys, DAY) == "skipped"
    assert main(["rollback", "--date", DAY]) == 0
    assert "pending again" in capsys.readouterr().out
    assert main(["merge", "--start", DAY, "--end", DAY]) == 0  # the step-by-step rebuild
    assert _run_says(capsys, DAY) == "ran"  # as the doc says: still pending
    assert _run_says(capsys, DAY) == "skipped"  # the run recorded it


# README: the report's rows per layer are the range's ------------------------------------------


def test_report_rows_per_layer_count_the_range_only(
    warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "rows per layer for the range's dates" in (ROOT / "README.md").read_text()
    for day in ("2025-03-03", "2025-03-04"):
        assert main(["run", "--mock", "--companies", "6", "--date", day]) == 0
    from datetime import date

    wh = DuckDBWarehouse(warehouse, read_only=True)
    try:
        one = build_report(wh, date(2025, 3, 4), date(2025, 3, 4)).layers
        both = build_report(wh, date(2025, 3, 3), date(2025, 3, 4)).layers
        per_day = wh.scalar(
            "SELECT COUNT(*) FROM stg.product_usage WHERE file_date = CAST(@d AS DATE)",
            {"d": date(2025, 3, 4)},
        )
        total = wh.scalar("SELECT COUNT(*) FROM stg.product_usage")
    finally:
        wh.close()
    assert one["stg.product_usage"] == per_day < total == both["stg.product_usage"]
    assert one["analytics.company_activity_daily"] < both["analytics.company_activity_daily"]
    assert one["dim.companies"] <= both["dim.companies"]


def test_install_steps_in_the_docs_are_normal_installs() -> None:
    """A user or a deployment installs the package, not an editable link to a checkout
    (scripts/bootstrap.sh, for working on the code, is the one editable install)."""
    installs = [
        (path, line)
        for path in DOCS
        for line in _fenced_lines(path.read_text(encoding="utf-8"))
        if re.search(r"\bpip3? install\b", line)
    ]
    assert installs, "README should show how to install the package"
    for path, line in installs:
        assert not re.search(r"\s(?:-e|--editable)\b", line), f"{path.name}: {line.strip()}"
