"""The entry point Data Factory's Custom activity runs on an Azure Batch node.

    python -m company_activity.batch_entry --run-id RUN load-crm --date 2025-11-23

It copies the activity's extendedProperties from `activity.json` in the working directory
into the environment (company_activity.azure.batch_task: declared, non-secret settings only),
then runs the ordinary `company-activity` command line with the same arguments. Its exit code
is the activity's outcome: non-zero fails the activity and ADF's retry policy takes over.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from company_activity import cli
from company_activity.azure.batch_task import prepare_environment
from company_activity.errors import ConfigError


def main(argv: Sequence[str] | None = None, workdir: Path | None = None) -> int:
    """Prepare the environment from activity.json, then run the company-activity CLI."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        prepare_environment(workdir or Path.cwd())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.EXIT_TERMINAL
    return cli.main(arguments)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
