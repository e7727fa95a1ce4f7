"""The entry point Data Factory's Custom activity runs on an Azure Batch node.

    python -m company_activity.azure.batch_task load-crm --date 2025-11-23

A Custom activity cannot set environment variables; it writes `activity.json` into the task's
working directory instead, with the activity's `extendedProperties`. This module copies
those properties into the environment (only declared, non-secret settings, so a secret can
never travel through the pipeline JSON: secrets come from Key Vault through KEY_VAULT_NAME
and the pool's managed identity), then runs the ordinary `company-activity` command line.
Its exit code is the activity's outcome: non-zero fails the activity and ADF's retry policy
takes over.

Why Batch and not a Function: an Azure Function activity gives up after 230 seconds, and a
day of usage or a backfill runs longer. A Custom activity runs as long as its policy timeout
allows and runs exactly the code the local runner runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path

from company_activity.errors import ConfigError
from company_activity.settings import SPECS

ACTIVITY_FILE = "activity.json"

# Read by azure-identity: selects the pool's user-assigned managed identity.
EXTRA_VARIABLES = frozenset({"AZURE_CLIENT_ID"})


def allowed_variables() -> frozenset[str]:
    """The environment variables a Custom activity may set: non-secret settings only."""
    return frozenset(s.env for s in SPECS if not s.secret) | EXTRA_VARIABLES


def extended_properties(activity_file: Path) -> dict[str, str]:
    """The activity's extendedProperties from activity.json, as environment variables."""
    try:
        document = json.loads(activity_file.read_text(encoding="utf-8"))
        props = document["typeProperties"].get("extendedProperties") or {}
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ConfigError(
            f"cannot read extendedProperties from {activity_file} ({exc}); this file is written "
            "by Data Factory's Custom activity"
        ) from None
    if not isinstance(props, dict):
        raise ConfigError(f"extendedProperties in {activity_file} must be an object")
    secret = sorted(k for k in props if k in {s.env for s in SPECS if s.secret})
    if secret:
        raise ConfigError(
            f"extendedProperties set secret setting(s) {', '.join(secret)}; keep secrets in Key "
            "Vault (KEY_VAULT_NAME) and remove them from the pipeline JSON"
        )
    unknown = sorted(set(props) - allowed_variables())
    if unknown:
        raise ConfigError(
            f"extendedProperties name unknown setting(s) {', '.join(unknown)}; use the variable "
            "names in .env.template"
        )
    values: dict[str, str] = {}
    for key, value in props.items():
        if not isinstance(value, str | int | float | bool):
            raise ConfigError(f"extendedProperties.{key} must be a plain value")
        values[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def prepare_environment(
    workdir: Path, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Copy activity.json's properties (when the file is there) into the environment."""
    target = os.environ if environ is None else environ
    activity_file = workdir / ACTIVITY_FILE
    if not activity_file.is_file():
        return {}
    values = extended_properties(activity_file)
    target.update(values)
    return values


def main(argv: Sequence[str] | None = None, workdir: Path | None = None) -> int:
    """Prepare the environment from activity.json, then run the company-activity CLI."""
    from company_activity import cli

    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        prepare_environment(workdir or Path.cwd())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return cli.EXIT_TERMINAL
    return cli.main(arguments)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
