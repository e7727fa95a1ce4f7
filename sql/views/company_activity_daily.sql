-- analytics.company_activity_daily: one row per company per loaded day, what readers query.
--
-- The metrics table holds everything that does not depend on the dimension; the attributes
-- and what follows from them (days_since_last_contact, the no_recent_contact reason, the
-- no_crm_record flag) are joined in here, so every row shows the dimension's current values
-- (SCD1) and a CRM change costs no analytics write. Every metrics row's company is in
-- dim.companies (the grid is built from it, and the dimension never deletes).
-- The CASTs keep each column's declared type (schema.COMPANY_ACTIVITY_DAILY) on both engines.
-- ddl.py renders this SELECT as CREATE VIEW per engine; it takes no parameters.

SELECT
    -- keys
    m.company_id,
    m.activity_date,
    -- attributes (the dimension's current values)
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
    -- churn and quality: the stored window reasons and source flags plus the dimension's
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
                ',',
                CASE WHEN m.has_inactive_14d = 1 THEN 'inactive_14d' END,
                CASE WHEN m.has_usage_drop = 1 THEN 'usage_drop' END,
                CASE
                    WHEN
                        CAST(d.last_contact_at AS DATE) <= m.activity_date
                        AND DATEDIFF(DAY, CAST(d.last_contact_at AS DATE), m.activity_date) > 30
                        AND m.active_days_30d <= 7
                        THEN 'no_recent_contact'
                END
            ),
            ''
        ) AS VARCHAR(200)
    ) AS churn_risk_reasons,
    CAST(
        COALESCE(
            NULLIF(
                CONCAT_WS(
                    ',',
                    CASE WHEN m.has_duplicate_source_records = 1 THEN 'duplicate_source_records' END,
                    CASE WHEN d.crm_snapshot_date IS NULL THEN 'no_crm_record' END,
                    CASE WHEN m.has_partial_window = 1 THEN 'partial_window' END,
                    CASE WHEN m.has_rejected_source_records = 1 THEN 'rejected_source_records' END
                ),
                ''
            ),
            'ok'
        ) AS VARCHAR(200)
    ) AS data_quality_flag,
    -- lineage (of the metrics: the dimension row carries its own)
    m.run_id,
    m.created_at,
    m.updated_at
FROM analytics.company_activity_metrics AS m
INNER JOIN dim.companies AS d
    ON m.company_id = d.company_id
