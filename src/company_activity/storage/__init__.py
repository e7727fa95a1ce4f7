"""Raw-zone storage backends behind one interface."""

from __future__ import annotations

from company_activity.settings import Settings
from company_activity.storage.base import BlobStore
from company_activity.storage.local import LocalFolderStore


def open_store(settings: Settings) -> BlobStore:
    """Azure Blob Storage when BLOB_CONN_STR or BLOB_ACCOUNT_URL is set, else the local folder."""
    if settings.blob_conn_str or settings.blob_account_url:
        from company_activity.storage.azure_blob import AzureBlobStore

        return AzureBlobStore.from_settings(settings)
    return LocalFolderStore(settings.local_blob_dir)


__all__ = ["BlobStore", "LocalFolderStore", "open_store"]
