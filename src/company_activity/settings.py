"""Configuration: every setting declared once, typed, validated at start-up.

Values come from, in order of precedence: the process environment, a `.env` file, Azure Key
Vault (secret settings only, when KEY_VAULT_NAME is set), then the declared default. Secret
values are registered with the redactor as soon as they are read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from dotenv import dotenv_values

from company_activity.crmformat import (
    CRM_DELIMITERS,
    parse_crm_column_map,
    parse_crm_date_formats,
    parse_crm_encoding,
)
from company_activity.errors import ConfigError
from company_activity.redact import redact, register_secret
from company_activity.secrets import SecretLookup, key_vault_lookup

_LOCAL_ROOT = ".local"


def _setting(
    env: str,
    default: Any,
    description: str,
    *,
    secret: bool = False,
    required: bool = False,
    choices: tuple[str, ...] = (),
    minimum: float | None = 0,
    url: bool = False,
    check: Callable[[str], object] | None = None,
) -> Any:
    """Declare one setting: its variable name, default, description and flags."""
    return field(
        default=default,
        repr=not secret,  # a logged or printed Settings never shows a secret
        metadata={
            "env": env,
            "description": description,
            "secret": secret,
            "required": required,
            "choices": choices,
            "minimum": minimum,
            "url": url,
            "check": check,
        },
    )


@dataclass(frozen=True)
class Settings:
    """The pipeline's configuration. Build it with load_settings()."""

    # Product-usage API
    api_url: str | None = _setting(
        "API_URL",
        None,
        "Product-usage API endpoint (live fetches; not needed with --mock).",
        required=True,
        url=True,
    )
    api_key: str | None = _setting(
        "API_KEY",
        None,
        "API key, sent as a bearer token (live fetches).",
        secret=True,
        required=True,
    )
    api_auth_header: str = _setting(
        "API_AUTH_HEADER", "Authorization", "Header that carries the API key."
    )
    api_page_size: int = _setting("API_PAGE_SIZE", 1000, "Records requested per page.", minimum=1)
    api_connect_timeout: float = _setting(
        "API_CONNECT_TIMEOUT", 5.0, "Seconds to wait for a connection to the API.", minimum=0.001
    )
    api_read_timeout: float = _setting(
        "API_READ_TIMEOUT",
        60.0,
        "Seconds to wait for each read of an API response (bounds one read, not the call).",
        minimum=0.001,
    )
    http_deadline_seconds: float = _setting(
        "HTTP_DEADLINE_SECONDS",
        120.0,
        "Longest one HTTP call (an API page, the webhook POST) may take, from connecting to "
        "the last byte of the answer, however slowly the server sends; then it fails as "
        "transient (an API page is retried).",
        minimum=0.001,
    )
    api_max_attempts: int = _setting(
        "API_MAX_ATTEMPTS",
        6,
        "Attempts per API page before giving up on transient errors.",
        minimum=1,
    )
    api_max_retry_seconds: float = _setting(
        "API_MAX_RETRY_SECONDS",
        300.0,
        "Total seconds spent retrying one page at most (a Retry-After beyond what is left "
        "ends the retries at once).",
    )
    api_max_backoff_seconds: float = _setting(
        "API_MAX_BACKOFF_SECONDS",
        60.0,
        "Longest single wait between attempts; a Retry-After asking for more ends the retries "
        "at once (transient, naming when the API said to come back).",
    )
    api_max_pages: int = _setting(
        "API_MAX_PAGES", 100000, "Loop guard: pages per day after which a fetch stops.", minimum=1
    )

    # Raw zone (Azure Blob Storage, or a local folder standing in for it)
    blob_conn_str: str | None = _setting(
        "BLOB_CONN_STR",
        None,
        "Azure Storage connection string; selects the Blob backend.",
        secret=True,
    )
    blob_account_url: str | None = _setting(
        "BLOB_ACCOUNT_URL",
        None,
        "Storage account URL used with managed identity (DefaultAzureCredential) instead of "
        "a connection string.",
        url=True,
    )
    blob_container: str = _setting(
        "BLOB_CONTAINER", "product-api-raw", "Container for the product-usage NDJSON."
    )
    crm_blob_path: str = _setting(
        "CRM_BLOB_PATH", "raw/crm/", "Where CRM snapshots land: container/prefix."
    )
    crm_column_map: str = _setting(
        "CRM_COLUMN_MAP",
        "",
        "CRM export header names mapped to ours, as `Export name=column` pairs separated by "
        "';' (e.g. Record ID=company_id;Company name=company_name); name and company_name "
        "always work.",
        check=parse_crm_column_map,
    )
    crm_delimiter: str = _setting(
        "CRM_DELIMITER",
        "auto",
        "CRM CSV delimiter: auto (detected from the header line), comma, semicolon, tab or pipe.",
        choices=("auto", *CRM_DELIMITERS),
    )
    crm_encoding: str = _setting(
        "CRM_ENCODING",
        "auto",
        "CRM CSV encoding: auto (UTF-8 with or without a BOM; UTF-16 by its BOM), or a "
        "single-byte encoding such as cp1252 for files without a BOM.",
        check=parse_crm_encoding,
    )
    crm_date_formats: str = _setting(
        "CRM_DATE_FORMATS",
        "",
        "strptime formats read in CRM dates besides ISO-8601, separated by ';' (e.g. "
        "%m/%d/%Y for a file re-saved by a US spreadsheet).",
        check=parse_crm_date_formats,
    )
    local_blob_dir: str = _setting(
        "LOCAL_BLOB_DIR",
        f"{_LOCAL_ROOT}/blob",
        "Local folder standing in for Blob Storage when no BLOB_* setting is given; one "
        "sub-folder per container.",
    )

    # Warehouse
    sql_conn_str: str | None = _setting(
        "SQL_CONN_STR",
        None,
        "Azure SQL ODBC connection string; selects Azure SQL over DuckDB.",
        secret=True,
    )
    sql_use_access_token: bool = _setting(
        "SQL_USE_ACCESS_TOKEN",
        False,
        "Authenticate to Azure SQL with an Azure AD token from DefaultAzureCredential.",
    )
    duckdb_path: str = _setting(
        "DUCKDB_PATH", f"{_LOCAL_ROOT}/warehouse.duckdb", "DuckDB file of the embedded warehouse."
    )
    duckdb_memory_limit: str = _setting(
        "DUCKDB_MEMORY_LIMIT",
        "640MB",
        "Memory the embedded DuckDB engine may use (e.g. 4GB, 512MB); beyond it, it spills to "
        "a temp folder beside DUCKDB_PATH. The process peaks about 250 MB above it.",
    )

    # Secrets, notifications, operations
    key_vault_name: str | None = _setting(
        "KEY_VAULT_NAME", None, "Azure Key Vault holding secret settings not set in the env."
    )
    notify_webhook_url: str | None = _setting(
        "NOTIFY_WEBHOOK_URL",
        None,
        "Teams Workflows or Logic App webhook for run notifications; log only when unset.",
        secret=True,
        url=True,
    )
    step_max_attempts: int = _setting(
        "STEP_MAX_ATTEMPTS", 3, "Attempts per pipeline step on transient errors.", minimum=1
    )
    usage_drop_threshold: float = _setting(
        "USAGE_DROP_THRESHOLD",
        0.5,
        "Validation: a day's usage rows below this fraction of the trailing 7-day average "
        "is a drop.",
    )
    usage_drop_action: str = _setting(
        "USAGE_DROP_ACTION",
        "warn",
        "What a usage drop does: warn or fail.",
        choices=("warn", "fail"),
    )
    usage_min_rows: int = _setting(
        "USAGE_MIN_ROWS",
        1,
        "Check usage_rows: fewest usage rows a day may stage (0 allows empty days).",
    )
    usage_min_rows_action: str = _setting(
        "USAGE_MIN_ROWS_ACTION",
        "fail",
        "What too few usage rows do: fail or warn.",
        choices=("fail", "warn"),
    )
    usage_rejected_share: float = _setting(
        "USAGE_REJECTED_SHARE",
        0.05,
        "Check usage_rejected: largest share (0-1) of a day's usage lines that may be rejected.",
    )
    usage_rejected_action: str = _setting(
        "USAGE_REJECTED_ACTION",
        "warn",
        "What too many rejected usage lines do: warn or fail.",
        choices=("warn", "fail"),
    )
    crm_rejected_share: float = _setting(
        "CRM_REJECTED_SHARE",
        0.05,
        "Check crm_rejected: largest share (0-1) of a CRM snapshot's rows that may be rejected "
        "(a snapshot with no accepted row always fails).",
    )
    crm_rejected_action: str = _setting(
        "CRM_REJECTED_ACTION",
        "warn",
        "What too many rejected CRM rows do: warn or fail.",
        choices=("warn", "fail"),
    )
    crm_shrink_share: float = _setting(
        "CRM_SHRINK_SHARE",
        0.05,
        "Check crm_shrink: largest share (0-1) of the previous snapshot's companies that may "
        "be missing from a CRM snapshot.",
    )
    crm_shrink_action: str = _setting(
        "CRM_SHRINK_ACTION",
        "warn",
        "What a shrunken CRM snapshot does: warn or fail.",
        choices=("warn", "fail"),
    )
    crm_nulled_share: float = _setting(
        "CRM_NULLED_SHARE",
        0.0,
        "Check crm_fields_nulled: largest share (0-1) of a CRM snapshot's staged rows that may "
        "have an unreadable field set NULL.",
    )
    crm_nulled_action: str = _setting(
        "CRM_NULLED_ACTION",
        "warn",
        "What CRM rows with an unreadable field do: warn or fail.",
        choices=("warn", "fail"),
    )
    notify_on: str = _setting(
        "NOTIFY_ON",
        "warnings",
        "Which runs notify: failures (only), warnings (failures and runs with warnings) or "
        "always (successes too). Failures and interrupts always notify.",
        choices=("failures", "warnings", "always"),
    )
    notify_max_attempts: int = _setting(
        "NOTIFY_MAX_ATTEMPTS",
        3,
        "Attempts to deliver a notification before it is logged as undelivered.",
        minimum=1,
    )
    log_level: str = _setting(
        "LOG_LEVEL", "INFO", "Logging level.", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )

    def require(self, *names: str) -> None:
        """Fail with ConfigError naming each listed setting that has no value."""
        missing = [
            spec for spec in SPECS if spec.attr in names and getattr(self, spec.attr) in (None, "")
        ]
        if missing:
            # Only secret settings are read from Key Vault (load_settings): name the vault
            # only for those.
            secrets = [spec.env for spec in missing if spec.secret]
            vault = (
                f"; {', '.join(secrets)} can also come from Key Vault (KEY_VAULT_NAME) as "
                f"{', '.join(map(key_vault_name, secrets))}"
                if secrets
                else ""
            )
            raise ConfigError(
                f"missing required setting(s): {', '.join(spec.env for spec in missing)}. Set "
                f"them in the environment or .env (see .env.template){vault}."
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (secret values are registered for redaction)."""
        for spec in SPECS:
            if spec.secret and isinstance(changes.get(spec.attr), str):
                register_secret(changes[spec.attr])
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, str]:
        """Every setting's effective value as text, with secrets masked (for logs)."""
        shown: dict[str, str] = {}
        for spec in SPECS:
            value = getattr(self, spec.attr)
            shown[spec.env] = "***" if spec.secret and value else str(value)
        return shown


@dataclass(frozen=True)
class SettingSpec:
    """One declared setting, as read back from the Settings fields."""

    attr: str
    env: str
    type: type
    default: Any
    description: str
    secret: bool
    required: bool
    choices: tuple[str, ...]
    minimum: float | None
    url: bool
    check: Callable[[str], object] | None


def _specs() -> tuple[SettingSpec, ...]:
    hints = get_type_hints(Settings)
    specs = []
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        base = next((t for t in getattr(hint, "__args__", (hint,)) if t is not type(None)), str)
        specs.append(
            SettingSpec(
                attr=f.name,
                env=f.metadata["env"],
                type=base,
                default=f.default,
                description=f.metadata["description"],
                secret=f.metadata["secret"],
                required=f.metadata["required"],
                choices=f.metadata["choices"],
                minimum=f.metadata["minimum"],
                url=f.metadata["url"],
                check=f.metadata["check"],
            )
        )
    return tuple(specs)


SPECS: tuple[SettingSpec, ...] = _specs()


def key_vault_name(env_name: str) -> str:
    """Map a setting name to a Key Vault secret name: API_KEY -> api-key."""
    return env_name.lower().replace("_", "-")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(spec: SettingSpec, raw: str) -> Any:
    text = raw.strip()
    shown = "the given value" if spec.secret else repr(raw)
    if spec.type is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{spec.env} must be true or false, got {shown}.")
    if spec.type is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{spec.env} must be a whole number, got {shown}.") from None
    if spec.type is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{spec.env} must be a number, got {shown}.") from None
    if spec.choices and text not in spec.choices:
        raise ConfigError(f"{spec.env} must be one of {', '.join(spec.choices)}, got {shown}.")
    return text or None if spec.default is None else text


def load_settings(
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
    secret_lookup_factory: Callable[[str], SecretLookup] = key_vault_lookup,
) -> Settings:
    """Read, validate and return the settings; raise ConfigError naming any bad variable."""
    env = dict(os.environ if environ is None else environ)
    file_values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        file_values = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}

    def raw_value(name: str) -> str | None:
        if name in env:
            return env[name]
        return file_values.get(name)

    values: dict[str, Any] = {}
    for spec in SPECS:
        raw = raw_value(spec.env)
        if raw is not None:
            values[spec.attr] = _convert(spec, raw)

    vault = values.get("key_vault_name")
    if vault:
        lookup = secret_lookup_factory(vault)
        for spec in SPECS:
            if spec.secret and values.get(spec.attr) in (None, ""):
                found = lookup(key_vault_name(spec.env))
                if found is not None:
                    values[spec.attr] = _convert(spec, found)

    for spec in SPECS:
        if spec.secret and isinstance(values.get(spec.attr), str):
            register_secret(values[spec.attr])
    settings = Settings(**values)
    for spec in SPECS:
        _check_value(spec, getattr(settings, spec.attr))
    return settings


def _check_value(spec: SettingSpec, value: Any) -> None:
    if value is None:
        return
    if spec.type in (int, float) and spec.minimum is not None and value < spec.minimum:
        if spec.minimum == 0:
            raise ConfigError(f"{spec.env} must not be negative, got {value}.")
        raise ConfigError(f"{spec.env} must be at least {spec.minimum:g}, got {value}.")
    if spec.check is not None and isinstance(value, str):
        spec.check(value)
    if spec.url:
        parsed = urlsplit(str(value))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            shown = "the given value" if spec.secret else repr(redact(value))
            raise ConfigError(f"{spec.env} must be an http(s) URL with a host, got {shown}.")
