"""The `company-activity` command line: thin wrappers over the package's functions.

Each command lives in its own module under company_activity.commands and exposes
`register(subparsers)`. Errors become one line on stderr and a non-zero exit; --verbose adds
the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import company_activity
from company_activity import commands
from company_activity.dates import utc_now
from company_activity.errors import PipelineError, TransientError
from company_activity.pipeline import interrupts
from company_activity.pipeline.runctx import configure_logging, new_run_id
from company_activity.redact import redact
from company_activity.settings import Settings, load_settings
from company_activity.warehouse import Warehouse, open_warehouse
from company_activity.warehouse.migrations import require_schema

log = logging.getLogger("company_activity")

EXIT_TERMINAL = 2
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: worth running again
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a tool killed by the closed pipe returns
DEFAULT_ENV_FILE = ".env"


@dataclass
class Context:
    """What every command gets: settings, the run id and the run's start time."""

    settings: Settings
    run_id: str
    started_at: datetime = field(default_factory=utc_now)

    def warehouse(self, *, read_only: bool = False, schema: bool = True) -> Warehouse:
        """The warehouse the settings name.

        read_only: open it as it is (DuckDB's read-only mode): never create a file or folder,
        never write. schema: fail with what to do when `init-db` has not created (or upgraded)
        the schema, instead of a missing-table error from the middle of a command.
        """
        wh = open_warehouse(self.settings, read_only=read_only)
        if schema:
            try:
                require_schema(wh)
            except BaseException:
                wh.close()
                raise
        return wh


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="company-activity",
        description="Company Activity Pipeline: CRM + product usage -> daily analytics table.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {company_activity.__version__}"
    )
    _add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    for command in subparsers.choices.values():
        _add_global_options(command, top=False)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command's name.

    On the commands' parsers they default to SUPPRESS, so an option given before the command
    is not reset by the command's parser (argparse fills in a subparser's defaults).
    """

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=default(False),
        help="debug logs and tracebacks",
    )
    parser.add_argument(
        "--env-file",
        type=_env_file,
        default=default(None),
        help=f"dotenv file to read (default: {DEFAULT_ENV_FILE} when it exists)",
    )
    parser.add_argument(
        "--run-id",
        type=_run_id,
        default=default(None),
        help="use this run id (e.g. Data Factory's pipeline run id) instead of a new one",
    )


def _env_file(text: str) -> str:
    # Named on purpose, so a typo must not silently run without the settings it holds.
    path = Path(text)
    if not path.exists() or path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is not a file (leave --env-file out to read {DEFAULT_ENV_FILE} if it exists)"
        )
    return text


def _run_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", text):
        raise argparse.ArgumentTypeError("a run id is 1-64 letters, digits, '-', '_', '.' or ':'")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        if argv is None:  # the process's own command line: it exits next
            # Its work is done and reported: a signal now must not kill the exit (-2).
            interrupts.settle()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run_id = args.run_id or new_run_id()
    # Stop on TERM (a scheduler's kill, a container stop) as cleanly as on Ctrl-C; whatever
    # error an interrupt surfaces as (DuckDB: 'Query interrupted'), it exits 130.
    interrupts.install()
    configure_logging(run_id, "DEBUG" if args.verbose else "INFO")
    try:
        settings = load_settings(dotenv_path=args.env_file or DEFAULT_ENV_FILE)
        if not args.verbose:
            logging.getLogger().setLevel(settings.log_level)
        result: int = args.handler(args, Context(settings, run_id))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return result
    except BrokenPipeError:
        # The reader went away (`status | head`): stop quietly, as other tools in a pipe do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(interrupts.description(), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error ends as one line and an exit code
        if interrupts.requested():  # an interrupt that surfaced as another error
            print(interrupts.description(), file=sys.stderr)
            return EXIT_INTERRUPTED
        return _exit_code(exc, args.verbose)


def _exit_code(exc: Exception, verbose: bool) -> int:
    """Report the error that ended a command; return the exit code it means."""
    if isinstance(exc, PipelineError):
        _report(exc, verbose)
        return EXIT_TRANSIENT if isinstance(exc, TransientError) else EXIT_TERMINAL
    if isinstance(exc, OSError):
        # A path that does not exist or cannot be written: the user's to fix.
        _report(exc, verbose)
        return EXIT_TERMINAL
    # The last line of defence: one line, no traceback.
    _report(exc, verbose, unexpected=True)
    return EXIT_UNEXPECTED


def _report(exc: BaseException, verbose: bool, unexpected: bool = False) -> None:
    if verbose:
        print(redact("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    prefix = "unexpected error" if unexpected else "error"
    hint = "" if verbose else " (run with --verbose for details)"
    print(f"{prefix}: {redact(exc)}{hint if unexpected else ''}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
