"""The pipeline's steps, in order. The ADF activities carry the same names (adf/ tests check)."""

from __future__ import annotations

PIPELINE_NAME = "pl-company-activity-daily"

CHECK_CRM_FILE = "check_crm_file"
LOAD_CRM = "load_crm"
MERGE_DIMENSION = "merge_dimension"
FETCH_USAGE = "fetch_usage"
LOAD_USAGE = "load_usage"
MERGE_ANALYTICS = "merge_analytics"
VALIDATE = "validate"
NOTIFY = "notify"

STEP_NAMES: tuple[str, ...] = (
    CHECK_CRM_FILE,
    LOAD_CRM,
    MERGE_DIMENSION,
    FETCH_USAGE,
    LOAD_USAGE,
    MERGE_ANALYTICS,
    VALIDATE,
    NOTIFY,
)
