-- Synapse dedicated SQL pool variant of the schema, generated from
-- src/company_activity/warehouse/schema.py by company_activity.azure.synapse.
-- Do not edit by hand: tests fail when this file and the declarations disagree.
-- Creates only what is missing; never drops anything.

IF SCHEMA_ID('stg') IS NULL EXEC ('CREATE SCHEMA stg');
GO

IF SCHEMA_ID('dim') IS NULL EXEC ('CREATE SCHEMA dim');
GO

IF SCHEMA_ID('analytics') IS NULL EXEC ('CREATE SCHEMA analytics');
GO

IF SCHEMA_ID('ops') IS NULL EXEC ('CREATE SCHEMA ops');
GO

IF OBJECT_ID('ops.schema_migrations', 'U') IS NULL
    CREATE TABLE ops.schema_migrations (
        version INT NOT NULL,
        description NVARCHAR(400) NOT NULL,
        applied_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_schema_migrations', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.schema_migrations
        ADD CONSTRAINT pk_ops_schema_migrations
        PRIMARY KEY NONCLUSTERED (version) NOT ENFORCED');
GO

IF OBJECT_ID('dim.calendar', 'U') IS NULL
    CREATE TABLE dim.calendar (
        calendar_date DATE NOT NULL
    )
    WITH (DISTRIBUTION = REPLICATE, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('dim.pk_dim_calendar', 'PK') IS NULL
    EXEC ('ALTER TABLE dim.calendar
        ADD CONSTRAINT pk_dim_calendar
        PRIMARY KEY NONCLUSTERED (calendar_date) NOT ENFORCED');
GO

IF OBJECT_ID('stg.crm_companies', 'U') IS NULL
    CREATE TABLE stg.crm_companies (
        snapshot_date DATE NOT NULL,
        company_id VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        company_id_raw NVARCHAR(200) NOT NULL,
        company_name NVARCHAR(400) COLLATE Latin1_General_100_CS_AS_SC NULL,
        country NVARCHAR(100) COLLATE Latin1_General_100_CS_AS_SC NULL,
        industry_tag NVARCHAR(100) COLLATE Latin1_General_100_CS_AS_SC NULL,
        last_contact_at DATETIME2(6) NULL,
        src_file_name NVARCHAR(400) NOT NULL,
        src_line_number INT NOT NULL,
        run_id VARCHAR(64) NOT NULL,
        loaded_at DATETIME2(6) NOT NULL,
        raw_line NVARCHAR(MAX) NOT NULL,
        issue_field VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NULL,
        issue_value NVARCHAR(400) NULL,
        issue_reason NVARCHAR(400) NULL
    )
    WITH (DISTRIBUTION = HASH (company_id), HEAP);
GO

IF OBJECT_ID('stg.pk_stg_crm_companies', 'PK') IS NULL
    EXEC ('ALTER TABLE stg.crm_companies
        ADD CONSTRAINT pk_stg_crm_companies
        PRIMARY KEY NONCLUSTERED (snapshot_date, src_line_number) NOT ENFORCED');
GO

IF OBJECT_ID('stg.product_usage', 'U') IS NULL
    CREATE TABLE stg.product_usage (
        file_date DATE NOT NULL,
        company_id VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        company_id_raw NVARCHAR(200) NOT NULL,
        active_users INT NOT NULL,
        events BIGINT NOT NULL,
        event_ts DATETIME2(6) NULL,
        src_file_name NVARCHAR(400) NOT NULL,
        src_line_number INT NOT NULL,
        run_id VARCHAR(64) NOT NULL,
        loaded_at DATETIME2(6) NOT NULL,
        raw_json NVARCHAR(MAX) NOT NULL
    )
    WITH (DISTRIBUTION = HASH (company_id), HEAP);
GO

IF OBJECT_ID('stg.pk_stg_product_usage', 'PK') IS NULL
    EXEC ('ALTER TABLE stg.product_usage
        ADD CONSTRAINT pk_stg_product_usage
        PRIMARY KEY NONCLUSTERED (file_date, src_file_name, src_line_number) NOT ENFORCED');
GO

IF OBJECT_ID('stg.quarantine', 'U') IS NULL
    CREATE TABLE stg.quarantine (
        source VARCHAR(20) NOT NULL,
        file_date DATE NOT NULL,
        src_file_name NVARCHAR(400) NOT NULL,
        src_line_number INT NOT NULL,
        company_id VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NULL,
        reason NVARCHAR(400) NOT NULL,
        raw_line NVARCHAR(MAX) NOT NULL,
        run_id VARCHAR(64) NOT NULL,
        loaded_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = HASH (company_id), HEAP);
GO

IF OBJECT_ID('stg.pk_stg_quarantine', 'PK') IS NULL
    EXEC ('ALTER TABLE stg.quarantine
        ADD CONSTRAINT pk_stg_quarantine
        PRIMARY KEY NONCLUSTERED (source, file_date, src_file_name, src_line_number) NOT ENFORCED');
GO

IF OBJECT_ID('dim.companies', 'U') IS NULL
    CREATE TABLE dim.companies (
        company_id VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        company_name NVARCHAR(400) COLLATE Latin1_General_100_CS_AS_SC NULL,
        country NVARCHAR(100) COLLATE Latin1_General_100_CS_AS_SC NULL,
        industry_tag NVARCHAR(100) COLLATE Latin1_General_100_CS_AS_SC NULL,
        last_contact_at DATETIME2(6) NULL,
        crm_snapshot_date DATE NULL,
        first_seen_date DATE NOT NULL,
        run_id VARCHAR(64) NOT NULL,
        created_at DATETIME2(6) NOT NULL,
        updated_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = HASH (company_id), CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('dim.pk_dim_companies', 'PK') IS NULL
    EXEC ('ALTER TABLE dim.companies
        ADD CONSTRAINT pk_dim_companies
        PRIMARY KEY NONCLUSTERED (company_id) NOT ENFORCED');
GO

IF OBJECT_ID('analytics.company_activity_metrics', 'U') IS NULL
    CREATE TABLE analytics.company_activity_metrics (
        company_id VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        activity_date DATE NOT NULL,
        active_users INT NOT NULL,
        events BIGINT NOT NULL,
        rolling_7d_active_users BIGINT NOT NULL,
        rolling_30d_events BIGINT NOT NULL,
        active_days_30d INT NOT NULL,
        activity_consistency_30d DECIMAL(9, 4) NOT NULL,
        peak_active_users_30d INT NOT NULL,
        usage_density DECIMAL(18, 4) NULL,
        active_users_dod_pct DECIMAL(18, 4) NULL,
        active_users_wow_pct DECIMAL(18, 4) NULL,
        last_activity_date DATE NULL,
        days_since_last_activity INT NULL,
        engagement_score DECIMAL(5, 1) NOT NULL,
        has_inactive_14d INT NOT NULL,
        has_usage_drop INT NOT NULL,
        has_duplicate_source_records INT NOT NULL,
        has_partial_window INT NOT NULL,
        has_rejected_source_records INT NOT NULL,
        run_id VARCHAR(64) NOT NULL,
        created_at DATETIME2(6) NOT NULL,
        updated_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = HASH (company_id), CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('analytics.pk_analytics_company_activity_metrics', 'PK') IS NULL
    EXEC ('ALTER TABLE analytics.company_activity_metrics
        ADD CONSTRAINT pk_analytics_company_activity_metrics
        PRIMARY KEY NONCLUSTERED (company_id, activity_date) NOT ENFORCED');
GO

IF OBJECT_ID('ops.pipeline_runs', 'U') IS NULL
    CREATE TABLE ops.pipeline_runs (
        run_id VARCHAR(64) NOT NULL,
        pipeline_name VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        command NVARCHAR(400) NOT NULL,
        start_date DATE NULL,
        end_date DATE NULL,
        status VARCHAR(20) NOT NULL,
        started_at DATETIME2(6) NOT NULL,
        ended_at DATETIME2(6) NULL,
        error_text NVARCHAR(4000) NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_pipeline_runs', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.pipeline_runs
        ADD CONSTRAINT pk_ops_pipeline_runs
        PRIMARY KEY NONCLUSTERED (run_id) NOT ENFORCED');
GO

IF OBJECT_ID('ops.step_runs', 'U') IS NULL
    CREATE TABLE ops.step_runs (
        run_id VARCHAR(64) NOT NULL,
        run_date DATE NOT NULL,
        step_name VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        status VARCHAR(20) NOT NULL,
        attempts INT NOT NULL,
        rows_affected BIGINT NULL,
        details NVARCHAR(4000) NULL,
        started_at DATETIME2(6) NOT NULL,
        ended_at DATETIME2(6) NULL,
        error_text NVARCHAR(4000) NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_step_runs', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.step_runs
        ADD CONSTRAINT pk_ops_step_runs
        PRIMARY KEY NONCLUSTERED (run_id, run_date, step_name) NOT ENFORCED');
GO

IF OBJECT_ID('ops.load_audits', 'U') IS NULL
    CREATE TABLE ops.load_audits (
        run_id VARCHAR(64) NOT NULL,
        source VARCHAR(20) NOT NULL,
        file_date DATE NOT NULL,
        status VARCHAR(20) NOT NULL,
        files_read INT NOT NULL,
        lines_read BIGINT NOT NULL,
        lines_staged BIGINT NOT NULL,
        lines_rejected BIGINT NOT NULL,
        bytes_read BIGINT NOT NULL,
        checksum VARCHAR(64) NULL,
        started_at DATETIME2(6) NOT NULL,
        ended_at DATETIME2(6) NOT NULL,
        error_text NVARCHAR(4000) NULL,
        fields_nulled BIGINT NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_load_audits', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.load_audits
        ADD CONSTRAINT pk_ops_load_audits
        PRIMARY KEY NONCLUSTERED (run_id, source, file_date) NOT ENFORCED');
GO

IF OBJECT_ID('ops.merge_audits', 'U') IS NULL
    CREATE TABLE ops.merge_audits (
        run_id VARCHAR(64) NOT NULL,
        target VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        run_date DATE NOT NULL,
        rows_affected BIGINT NULL,
        started_at DATETIME2(6) NOT NULL,
        ended_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_merge_audits', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.merge_audits
        ADD CONSTRAINT pk_ops_merge_audits
        PRIMARY KEY NONCLUSTERED (run_id, target, run_date) NOT ENFORCED');
GO

IF OBJECT_ID('ops.rollbacks', 'U') IS NULL
    CREATE TABLE ops.rollbacks (
        run_id VARCHAR(64) NOT NULL,
        activity_date DATE NOT NULL,
        analytics_rows_deleted BIGINT NOT NULL,
        staging_rows_deleted BIGINT NOT NULL,
        rolled_back_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_rollbacks', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.rollbacks
        ADD CONSTRAINT pk_ops_rollbacks
        PRIMARY KEY NONCLUSTERED (run_id, activity_date) NOT ENFORCED');
GO

IF OBJECT_ID('ops.check_results', 'U') IS NULL
    CREATE TABLE ops.check_results (
        run_id VARCHAR(64) NOT NULL,
        check_date DATE NOT NULL,
        check_name VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        step_name VARCHAR(100) COLLATE Latin1_General_100_BIN2_UTF8 NOT NULL,
        outcome VARCHAR(10) NOT NULL,
        measured_value DECIMAL(19, 4) NULL,
        threshold DECIMAL(19, 4) NULL,
        message NVARCHAR(1000) NOT NULL,
        checked_at DATETIME2(6) NOT NULL
    )
    WITH (DISTRIBUTION = ROUND_ROBIN, CLUSTERED COLUMNSTORE INDEX);
GO

IF OBJECT_ID('ops.pk_ops_check_results', 'PK') IS NULL
    EXEC ('ALTER TABLE ops.check_results
        ADD CONSTRAINT pk_ops_check_results
        PRIMARY KEY NONCLUSTERED (run_id, check_date, check_name) NOT ENFORCED');
GO

IF OBJECT_ID('analytics.company_activity_daily', 'V') IS NULL
    EXEC ('CREATE VIEW analytics.company_activity_daily AS
SELECT
    -- keys
    m.company_id,
    m.activity_date,
    -- attributes (the dimension''s current values)
    d.company_name,
    d.country,
    d.industry_tag,
    d.last_contact_at,
    -- daily measures
    m.active_users,
    m.events,
    -- windows
    m.rolling_7d_active_users,
    m.rolling_30d_events,
    m.active_days_30d,
    m.activity_consistency_30d,
    m.peak_active_users_30d,
    m.usage_density,
    m.active_users_dod_pct,
    m.active_users_wow_pct,
    m.last_activity_date,
    m.days_since_last_activity,
    CAST(
        CASE
            WHEN CAST(d.last_contact_at AS DATE) <= m.activity_date
                THEN DATEDIFF(DAY, CAST(d.last_contact_at AS DATE), m.activity_date)
        END AS INT
    ) AS days_since_last_contact,
    m.engagement_score,
    -- churn and quality: the stored window reasons and source flags plus the dimension''s
    CAST(
        CASE
            WHEN
                m.has_inactive_14d = 1
                OR m.has_usage_drop = 1
                OR (
                    CAST(d.last_contact_at AS DATE) <= m.activity_date
                    AND DATEDIFF(DAY, CAST(d.last_contact_at AS DATE), m.activity_date) > 30
                    AND m.active_days_30d <= 7
                )
                THEN 1
            ELSE 0
        END AS INT
    ) AS is_churn_risk,
    CAST(
        NULLIF(
            CONCAT_WS(
                '','',
                CASE WHEN m.has_inactive_14d = 1 THEN ''inactive_14d'' END,
                CASE WHEN m.has_usage_drop = 1 THEN ''usage_drop'' END,
                CASE
                    WHEN
                        CAST(d.last_contact_at AS DATE) <= m.activity_date
                        AND DATEDIFF(DAY, CAST(d.last_contact_at AS DATE), m.activity_date) > 30
                        AND m.active_days_30d <= 7
                        THEN ''no_recent_contact''
                END
            ),
            ''''
        ) AS VARCHAR(200)
    ) AS churn_risk_reasons,
    CAST(
        COALESCE(
            NULLIF(
                CONCAT_WS(
                    '','',
                    CASE WHEN m.has_duplicate_source_records = 1 THEN ''duplicate_source_records'' END,
                    CASE WHEN d.crm_snapshot_date IS NULL THEN ''no_crm_record'' END,
                    CASE WHEN m.has_partial_window = 1 THEN ''partial_window'' END,
                    CASE WHEN m.has_rejected_source_records = 1 THEN ''rejected_source_records'' END
                ),
                ''''
            ),
            ''ok''
        ) AS VARCHAR(200)
    ) AS data_quality_flag,
    -- lineage (of the metrics: the dimension row carries its own)
    m.run_id,
    m.created_at,
    m.updated_at
FROM analytics.company_activity_metrics AS m
INNER JOIN dim.companies AS d
    ON m.company_id = d.company_id');
GO
