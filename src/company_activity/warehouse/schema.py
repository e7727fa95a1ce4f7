"""The warehouse tables: the one source of truth for every column and type.

Types are written in T-SQL; `relations.duckdb_type()` maps each to what DuckDB stores. The DDL
for both engines is rendered from these declarations (see ddl.py and migrations.py), and a test
proves that DuckDB's information_schema agrees with them. What a declaration is (Column, Table,
View) is in relations.py.
"""

from __future__ import annotations

from company_activity.warehouse.relations import Column, Table, View


def _c(name: str, sql_type: str, nullable: bool = True, description: str = "") -> Column:
    collation = None
    if sql_type == COMPANY_ID:
        collation = KEY_COLLATION
    elif name in ATTRIBUTE_COLUMNS:
        collation = ATTRIBUTE_COLLATION
    return Column(name, sql_type, nullable, description, collation)


# Azure SQL's default collation is case-insensitive and would make its joins and change tests
# disagree with DuckDB's binary ones (dialect contract, rule 7). Canonical keys compare binary
# and are stored as UTF-8, so a non-Latin id survives in a VARCHAR; company attributes compare
# case-sensitively, so a CRM that only changes a name's case still updates every row.
KEY_COLLATION = "Latin1_General_100_BIN2_UTF8"
ATTRIBUTE_COLLATION = "Latin1_General_100_CS_AS_SC"
ATTRIBUTE_COLUMNS = frozenset({"company_name", "country", "industry_tag"})

# Lengths shared by the loaders' validation and the DDL.
COMPANY_ID = "VARCHAR(100)"
RAW_COMPANY_ID = "NVARCHAR(200)"
RUN_ID = "VARCHAR(64)"
FILE_NAME = "NVARCHAR(400)"
TS = "DATETIME2(6)"

_PROVENANCE = (
    _c("src_file_name", FILE_NAME, False, "File or blob the row came from"),
    _c("src_line_number", "INT", False, "1-based line (CSV: record start line) in that file"),
    _c("run_id", RUN_ID, False, "Run that loaded the row"),
    _c("loaded_at", TS, False, "When the row was loaded (UTC)"),
)

CRM_COMPANIES = Table(
    "stg.crm_companies",
    (
        _c("snapshot_date", "DATE", False, "Date of the CRM snapshot file"),
        _c("company_id", COMPANY_ID, False, "Canonical id: trimmed, lower case"),
        _c("company_id_raw", RAW_COMPANY_ID, False, "Id exactly as in the file"),
        _c("company_name", "NVARCHAR(400)"),
        _c("country", "NVARCHAR(100)"),
        _c("industry_tag", "NVARCHAR(100)"),
        _c("last_contact_at", TS, description="Last CRM contact, UTC"),
        *_PROVENANCE,
        _c("raw_line", "NVARCHAR(MAX)", False, "The CSV record verbatim"),
        _c("issue_field", "VARCHAR(100)", description="Field staged NULL: unreadable value"),
        _c("issue_value", "NVARCHAR(400)", description="That field's value, shortened"),
        _c("issue_reason", "NVARCHAR(400)", description="Why the value could not be read"),
    ),
    ("snapshot_date", "src_line_number"),
    "CRM snapshot rows, one per accepted CSV record",
    duckdb_enforces_key=False,
)

PRODUCT_USAGE = Table(
    "stg.product_usage",
    (
        _c("file_date", "DATE", False, "Partition (activity) date"),
        _c("company_id", COMPANY_ID, False, "Canonical id: trimmed, lower case"),
        _c("company_id_raw", RAW_COMPANY_ID, False, "Id exactly as in the record"),
        _c("active_users", "INT", False),
        _c("events", "BIGINT", False),
        _c("event_ts", TS, description="The record's ts, UTC"),
        *_PROVENANCE,
        _c("raw_json", "NVARCHAR(MAX)", False, "The NDJSON line verbatim"),
    ),
    ("file_date", "src_file_name", "src_line_number"),
    "Product-usage records, one per accepted NDJSON line",
    duckdb_enforces_key=False,
)

QUARANTINE = Table(
    "stg.quarantine",
    (
        _c("source", "VARCHAR(20)", False, "crm or usage"),
        _c("file_date", "DATE", False, "Snapshot or partition date"),
        _c("src_file_name", FILE_NAME, False),
        _c("src_line_number", "INT", False),
        _c("company_id", COMPANY_ID, description="Canonical id when one could be read"),
        _c("reason", "NVARCHAR(400)", False, "Why the row was rejected"),
        _c("raw_line", "NVARCHAR(MAX)", False, "The rejected input verbatim"),
        _c("run_id", RUN_ID, False),
        _c("loaded_at", TS, False),
    ),
    ("source", "file_date", "src_file_name", "src_line_number"),
    "Rejected input rows with the reason",
    duckdb_enforces_key=False,
)

CALENDAR = Table(
    "dim.calendar",
    (_c("calendar_date", "DATE", False),),
    ("calendar_date",),
    "One row per day: the spine of the company x day grid",
)

COMPANIES = Table(
    "dim.companies",
    (
        _c("company_id", COMPANY_ID, False, "Canonical id"),
        _c("company_name", "NVARCHAR(400)"),
        _c("country", "NVARCHAR(100)"),
        _c("industry_tag", "NVARCHAR(100)"),
        _c("last_contact_at", TS),
        _c("crm_snapshot_date", "DATE", description="Snapshot the attributes came from"),
        _c("first_seen_date", "DATE", False, "Earliest CRM snapshot or usage date"),
        _c("run_id", RUN_ID, False),
        _c("created_at", TS, False),
        _c("updated_at", TS, False),
    ),
    ("company_id",),
    "Company master (SCD1)",
)

# A company's day, declared once for the metrics table and the view over it.
_DAY_KEYS = (
    _c("company_id", COMPANY_ID, False),
    _c("activity_date", "DATE", False),
)
_DAILY_MEASURES = (
    _c("active_users", "INT", False),
    _c("events", "BIGINT", False),
)
_WINDOWS = (
    _c("rolling_7d_active_users", "BIGINT", False),
    _c("rolling_30d_events", "BIGINT", False),
    _c("active_days_30d", "INT", False),
    _c("activity_consistency_30d", "DECIMAL(9,4)", False),
    _c("peak_active_users_30d", "INT", False),
    _c("usage_density", "DECIMAL(18,4)"),
    _c("active_users_dod_pct", "DECIMAL(18,4)"),
    _c("active_users_wow_pct", "DECIMAL(18,4)"),
    _c("last_activity_date", "DATE"),
    _c("days_since_last_activity", "INT"),
)
_ENGAGEMENT = _c("engagement_score", "DECIMAL(5,1)", False)
_LINEAGE = (
    _c("run_id", RUN_ID, False),
    _c("created_at", TS, False),
    _c("updated_at", TS, False),
)

# The measures, windows and lineage of a company's day: everything that does not depend on
# the dimension, so a CRM change never rewrites it (the view below joins the attributes).
COMPANY_ACTIVITY_METRICS = Table(
    "analytics.company_activity_metrics",
    (
        *_DAY_KEYS,
        *_DAILY_MEASURES,
        *_WINDOWS,
        _ENGAGEMENT,
        # the churn reasons and quality flags that follow from usage alone (1 or 0)
        _c("has_inactive_14d", "INT", False, "churn reason inactive_14d"),
        _c("has_usage_drop", "INT", False, "churn reason usage_drop"),
        _c("has_duplicate_source_records", "INT", False, "flag duplicate_source_records"),
        _c("has_partial_window", "INT", False, "flag partial_window"),
        _c("has_rejected_source_records", "INT", False, "flag rejected_source_records"),
        *_LINEAGE,
    ),
    ("company_id", "activity_date"),
    "One row per company per loaded day: what does not depend on the dimension",
    duckdb_enforces_key=False,
    # The merges look up "the latest merged day" and one day's rows: a seek, not a scan.
    indexes=(("activity_date",),),
)

COMPANY_ACTIVITY_DAILY = View(
    "analytics.company_activity_daily",
    (
        *_DAY_KEYS,
        # attributes (current dimension values)
        _c("company_name", "NVARCHAR(400)"),
        _c("country", "NVARCHAR(100)"),
        _c("industry_tag", "NVARCHAR(100)"),
        _c("last_contact_at", TS),
        *_DAILY_MEASURES,
        *_WINDOWS,
        _c("days_since_last_contact", "INT"),
        _ENGAGEMENT,
        # churn and quality
        _c("is_churn_risk", "INT", False, "1 when any churn reason applies"),
        _c("churn_risk_reasons", "VARCHAR(200)"),
        _c("data_quality_flag", "VARCHAR(200)", False),
        *_LINEAGE,  # of the metrics row
    ),
    query_file="views/company_activity_daily.sql",
    description="One row per company per calendar day: metrics with the current attributes",
)

SCHEMA_MIGRATIONS = Table(
    "ops.schema_migrations",
    (
        _c("version", "INT", False),
        _c("description", "NVARCHAR(400)", False),
        _c("applied_at", TS, False),
    ),
    ("version",),
    "Applied schema migrations",
)

PIPELINE_RUNS = Table(
    "ops.pipeline_runs",
    (
        _c("run_id", RUN_ID, False),
        _c("pipeline_name", "VARCHAR(100)", False),
        _c("command", "NVARCHAR(400)", False, "What was run, e.g. run --start .. --end .."),
        _c("start_date", "DATE"),
        _c("end_date", "DATE"),
        _c("status", "VARCHAR(20)", False, "running, succeeded, failed, interrupted"),
        _c("started_at", TS, False),
        _c("ended_at", TS),
        _c("error_text", "NVARCHAR(4000)", description="Redacted error"),
    ),
    ("run_id",),
    "One row per pipeline or command run",
)

STEP_RUNS = Table(
    "ops.step_runs",
    (
        _c("run_id", RUN_ID, False),
        _c("run_date", "DATE", False),
        _c("step_name", "VARCHAR(100)", False),
        _c("status", "VARCHAR(20)", False, "running, succeeded, failed, skipped, interrupted"),
        _c("attempts", "INT", False),
        _c("rows_affected", "BIGINT"),
        _c("details", "NVARCHAR(4000)", description="Counts as JSON"),
        _c("started_at", TS, False),
        _c("ended_at", TS),
        _c("error_text", "NVARCHAR(4000)", description="Redacted error"),
    ),
    ("run_id", "run_date", "step_name"),
    "One row per step per date per run",
)

LOAD_AUDITS = Table(
    "ops.load_audits",
    (
        _c("run_id", RUN_ID, False),
        _c("source", "VARCHAR(20)", False, "crm or usage"),
        _c("file_date", "DATE", False),
        _c("status", "VARCHAR(20)", False, "succeeded, failed or rolled_back"),
        _c("files_read", "INT", False),
        _c("lines_read", "BIGINT", False),
        _c("lines_staged", "BIGINT", False),
        _c("lines_rejected", "BIGINT", False),
        _c("bytes_read", "BIGINT", False),
        _c("checksum", "VARCHAR(64)", description="sha256 over the input files, in order"),
        _c("started_at", TS, False),
        _c("ended_at", TS, False),
        _c("error_text", "NVARCHAR(4000)"),
        _c("fields_nulled", "BIGINT", description="Staged rows with an unreadable field NULL"),
    ),
    ("run_id", "source", "file_date"),
    "One row per source, date and load run",
)

MERGE_AUDITS = Table(
    "ops.merge_audits",
    (
        _c("run_id", RUN_ID, False),
        _c("target", "VARCHAR(100)", False, "dim.companies or analytics"),
        _c("run_date", "DATE", False),
        _c("rows_affected", "BIGINT"),
        _c("started_at", TS, False),
        _c("ended_at", TS, False),
    ),
    ("run_id", "target", "run_date"),
    "One row per merge of a date",
)

ROLLBACKS = Table(
    "ops.rollbacks",
    (
        _c("run_id", RUN_ID, False),
        _c("activity_date", "DATE", False),
        _c("analytics_rows_deleted", "BIGINT", False),
        _c("staging_rows_deleted", "BIGINT", False),
        _c("rolled_back_at", TS, False),
    ),
    ("run_id", "activity_date"),
    "Each rollback of a date",
)

CHECK_RESULTS = Table(
    "ops.check_results",
    (
        _c("run_id", RUN_ID, False),
        _c("check_date", "DATE", False),
        _c("check_name", "VARCHAR(100)", False, "A check declared in model/checks.py"),
        _c("step_name", "VARCHAR(100)", False, "The step that ran it"),
        _c("outcome", "VARCHAR(10)", False, "pass, warn or fail"),
        _c("measured_value", "DECIMAL(19,4)"),
        _c("threshold", "DECIMAL(19,4)"),
        _c("message", "NVARCHAR(1000)", False),
        _c("checked_at", TS, False),
    ),
    ("run_id", "check_date", "check_name"),
    "Each data-quality check's result per date and run",
)

TABLES: tuple[Table, ...] = (
    SCHEMA_MIGRATIONS,
    CALENDAR,
    CRM_COMPANIES,
    PRODUCT_USAGE,
    QUARANTINE,
    COMPANIES,
    COMPANY_ACTIVITY_METRICS,
    PIPELINE_RUNS,
    STEP_RUNS,
    LOAD_AUDITS,
    MERGE_AUDITS,
    ROLLBACKS,
    CHECK_RESULTS,
)

# Views, created after every table (they read them).
VIEWS: tuple[View, ...] = (COMPANY_ACTIVITY_DAILY,)

SCHEMAS: tuple[str, ...] = ("stg", "dim", "analytics", "ops")


def table(name: str) -> Table:
    """Look a table up by its qualified name."""
    for candidate in TABLES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
