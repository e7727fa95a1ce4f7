"""Staging loads: the CRM CSV and the usage NDJSON into stg tables, with a quarantine and an
audit that proves nothing was lost. See docs/staging.md."""

from company_activity.staging.audit import FAILED, SUCCEEDED, LoadResult
from company_activity.staging.crm import (
    load_crm,
    snapshot_date_from_column,
    snapshot_date_from_name,
)
from company_activity.staging.csvformat import CrmFormat
from company_activity.staging.usage import load_usage, load_usage_files

__all__ = [
    "FAILED",
    "SUCCEEDED",
    "CrmFormat",
    "LoadResult",
    "load_crm",
    "load_usage",
    "load_usage_files",
    "snapshot_date_from_column",
    "snapshot_date_from_name",
]
