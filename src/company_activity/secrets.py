"""Secret settings from Azure Key Vault, for deployments that keep them there.

Key Vault secret names allow only letters, digits and dashes, so a setting such as API_KEY is
stored as the secret `api-key` (lower case, underscores become dashes).
"""

from __future__ import annotations

from collections.abc import Callable

from company_activity.errors import ConfigError
from company_activity.redact import redact

SecretLookup = Callable[[str], "str | None"]


def key_vault_lookup(vault_name: str, client: object | None = None) -> SecretLookup:
    """Return a function that reads one secret by name, or None when the vault lacks it."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    if client is None:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        client = SecretClient(
            vault_url=f"https://{vault_name}.vault.azure.net",
            credential=DefaultAzureCredential(),
        )

    def lookup(secret_name: str) -> str | None:
        try:
            value: str | None = client.get_secret(secret_name).value  # type: ignore[attr-defined]
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise ConfigError(
                f"cannot read secret {secret_name!r} from Key Vault {vault_name!r}: "
                f"{redact(exc)}. Check the identity's get/list permission on the vault."
            ) from None
        return value

    return lookup
