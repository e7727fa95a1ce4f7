"""Settings: typed, validated, documented in .env.template, secrets from Key Vault."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest

from company_activity.errors import ConfigError
from company_activity.pipeline.runctx import configure_logging
from company_activity.redact import redact
from company_activity.secrets import key_vault_lookup
from company_activity.settings import SPECS, key_vault_name, load_settings

ROOT = Path(__file__).resolve().parents[1]


def _template_entries() -> dict[str, tuple[str, bool, str]]:
    """Map each variable in .env.template to (REQUIRED/OPTIONAL, secret flag, comment)."""
    entries = {}
    comment = ""
    for line in (ROOT / ".env.template").read_text().splitlines():
        marker = re.match(r"# (REQUIRED|OPTIONAL)( \[secret\])?: (.+)", line)
        if marker:
            comment = line
            kind, secret, text = marker.group(1), bool(marker.group(2)), marker.group(3)
            continue
        assignment = re.match(r"([A-Z_][A-Z0-9_]*)=", line)
        if assignment:
            assert comment, f"{assignment.group(1)} has no REQUIRED/OPTIONAL comment"
            entries[assignment.group(1)] = (kind, secret, text)
            comment = ""
    return entries


def test_env_template_matches_settings() -> None:
    entries = _template_entries()
    assert set(entries) == {s.env for s in SPECS}
    for spec in SPECS:
        kind, secret, text = entries[spec.env]
        assert kind == ("REQUIRED" if spec.required else "OPTIONAL"), spec.env
        assert secret == spec.secret, spec.env
        assert text == spec.description, spec.env


def test_env_template_holds_no_secret_values() -> None:
    for line in (ROOT / ".env.template").read_text().splitlines():
        name, _, value = line.partition("=")
        if any(s.env == name and s.secret for s in SPECS):
            assert value == "", f"{name} has a value in the template"


def test_every_setting_is_documented_once() -> None:
    names = [s.env for s in SPECS]
    assert len(names) == len(set(names))
    assert all(s.description for s in SPECS)


def test_defaults_need_nothing_configured() -> None:
    settings = load_settings(environ={}, dotenv_path=None)
    assert settings.blob_container == "product-api-raw"
    assert settings.crm_blob_path == "raw/crm/"
    assert settings.sql_conn_str is None
    assert settings.duckdb_path.startswith(".local/")


def test_types_are_converted_and_validated() -> None:
    settings = load_settings(
        environ={
            "API_PAGE_SIZE": " 250 ",
            "SQL_USE_ACCESS_TOKEN": "yes",
            "API_READ_TIMEOUT": "2.5",
        },
        dotenv_path=None,
    )
    assert settings.api_page_size == 250
    assert settings.sql_use_access_token is True
    assert settings.api_read_timeout == 2.5
    with pytest.raises(ConfigError, match="API_PAGE_SIZE must be a whole number"):
        load_settings(environ={"API_PAGE_SIZE": "many"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="USAGE_DROP_ACTION must be one of warn, fail"):
        load_settings(environ={"USAGE_DROP_ACTION": "explode"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="API_MAX_ATTEMPTS must be at least 1, got 0"):
        load_settings(environ={"API_MAX_ATTEMPTS": "0"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="USAGE_DROP_THRESHOLD must not be negative"):
        load_settings(environ={"USAGE_DROP_THRESHOLD": "-0.5"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="API_URL must be an http"):
        load_settings(environ={"API_URL": "ftp://x/usage"}, dotenv_path=None)


def test_missing_required_value_names_the_variable() -> None:
    settings = load_settings(environ={"API_URL": "http://127.0.0.1:1/usage"}, dotenv_path=None)
    with pytest.raises(ConfigError, match=r"API_KEY.*api-key"):
        settings.require("api_url", "api_key")


def test_dotenv_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("API_URL=http://from-dotenv/usage\nBLOB_CONTAINER=from-dotenv\n")
    settings = load_settings(environ={"BLOB_CONTAINER": "from-env"}, dotenv_path=env_file)
    assert settings.api_url == "http://from-dotenv/usage"
    assert settings.blob_container == "from-env"


def test_key_vault_name_mapping() -> None:
    assert key_vault_name("API_KEY") == "api-key"
    assert key_vault_name("NOTIFY_WEBHOOK_URL") == "notify-webhook-url"
    assert all(re.fullmatch(r"[a-z0-9-]+", key_vault_name(s.env)) for s in SPECS)


class FakeSecretClient:
    """Stands in for azure.keyvault.secrets.SecretClient: no Key Vault emulator exists offline."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.asked: list[str] = []

    def get_secret(self, name: str) -> object:
        from azure.core.exceptions import ResourceNotFoundError

        self.asked.append(name)
        if name not in self.secrets:
            raise ResourceNotFoundError(f"secret {name} not found")

        class Secret:
            value = self.secrets[name]

        return Secret()


def test_key_vault_fills_secret_settings_and_environment_wins() -> None:
    """Uses a fake secret client (no Key Vault emulator exists offline)."""
    client = FakeSecretClient({"api-key": "kv-api-key-123", "sql-conn-str": "Driver=x;Pwd=kv"})
    settings = load_settings(
        environ={"KEY_VAULT_NAME": "my-vault", "SQL_CONN_STR": "Driver=env;Pwd=env"},
        dotenv_path=None,
        secret_lookup_factory=lambda vault: key_vault_lookup(vault, client),
    )
    assert settings.api_key == "kv-api-key-123"
    assert settings.sql_conn_str == "Driver=env;Pwd=env"  # the environment wins
    assert "sql-conn-str" not in client.asked  # not even asked for
    assert "api-url" not in client.asked  # only secret settings come from the vault
    assert settings.blob_conn_str is None  # not in the vault: stays unset


def test_key_vault_errors_are_config_errors_without_secrets() -> None:
    """Uses a fake secret client (no Key Vault emulator exists offline)."""
    from azure.core.exceptions import ClientAuthenticationError

    class Denied:
        def get_secret(self, name: str) -> object:
            raise ClientAuthenticationError("denied")

    with pytest.raises(ConfigError, match="get/list permission"):
        load_settings(
            environ={"KEY_VAULT_NAME": "v"},
            dotenv_path=None,
            secret_lookup_factory=lambda vault: key_vault_lookup(vault, Denied()),
        )


def test_secret_values_never_reach_logs() -> None:
    secret = "s3cr3t-api-key-value"
    settings = load_settings(
        environ={"API_KEY": secret, "SQL_CONN_STR": "Server=x;Uid=u;Pwd=hunter2pass;"},
        dotenv_path=None,
    )
    stream = io.StringIO()
    configure_logging("run-test", "DEBUG", stream)
    log = logging.getLogger("company_activity.test")
    log.info("settings: %s", settings.describe())
    log.info("calling https://api.example/usage?date=2025-01-01&api_key=%s", secret)
    log.warning("header Authorization: Bearer %s", settings.api_key)
    try:
        raise RuntimeError(f"connect failed with {settings.sql_conn_str}")
    except RuntimeError:
        log.exception("boom")
    output = stream.getvalue()
    assert secret not in output
    assert "hunter2pass" not in output
    assert "run-test" in output
    assert secret not in redact(repr(settings.describe()))


def test_redact_masks_unregistered_secret_fragments() -> None:
    text = redact(
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc123==;x?sig=zz&code=q1"
    )
    assert "abc123" not in text and "zz" not in text and "q1" not in text


def test_settings_repr_hides_secrets() -> None:
    settings = load_settings(environ={"API_KEY": "repr-secret-xyz"}, dotenv_path=None)
    assert "repr-secret-xyz" not in repr(settings)


def test_a_missing_setting_names_key_vault_only_for_secrets() -> None:
    """Only secret settings are read from Key Vault: the message must not send API_URL there."""
    settings = load_settings(environ={}, dotenv_path=None)
    for spec in SPECS:
        if getattr(settings, spec.attr) not in (None, ""):
            continue
        with pytest.raises(ConfigError) as raised:
            settings.require(spec.attr)
        message = str(raised.value)
        assert spec.env in message
        assert ("Key Vault" in message) == spec.secret, message
        assert (key_vault_name(spec.env) in message) == spec.secret, message
