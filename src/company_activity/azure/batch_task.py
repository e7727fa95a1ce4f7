"""What Data Factory's Custom activity hands a task on an Azure Batch node, as settings.

A Custom activity cannot set environment variables; it writes `activity.json` into the task's
working directory instead, with the activity's `extendedProperties`. This module copies
those properties into the environment (only declared, non-secret settings, so a secret can
never travel through the pipeline JSON: secrets come from Key Vault through KEY_VAULT_NAME
and the pool's managed identity). The entry point the activity runs,
`python -m company_activity.batch_entry COMMAND ...`, calls it and then runs the ordinary
`company-activity` command line (batch_entry.py: the CLI is the layer above this one).

Why Batch and not a Function: an Azure Function activity gives up after 230 seconds, and a
day of usage or a backfill runs longer. A Custom activity runs as long as its policy timeout
allows and runs exactly the code the local runner runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
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
