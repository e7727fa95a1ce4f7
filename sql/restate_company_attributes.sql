-- analytics.company_activity_daily: the dimension's current attributes on every row.
--
-- Runs right after merge_dimension.sql in the merge_dimension step.
-- Parameters: @run_ts, @run_id (it looks at the whole table's latest day, not a range).

-- SCD1 on the analytics rows: every row of a company carries the dimension's current
-- values. All rows of a company agree, so its latest row shows whether the dimension moved;
-- only those companies' rows are rewritten. Columns derived from the attributes follow:
-- days_since_last_contact, the no_recent_contact reason and the no_crm_record flag. The
-- window-based reasons and flags cannot change with the dimension and are carried over.
MERGE INTO analytics.company_activity_daily AS tgt
USING (
    SELECT
        -- keys
        row_now.company_id,
        row_now.activity_date,
        -- attributes
        row_now.company_name,
        row_now.country,
        row_now.industry_tag,
        row_now.last_contact_at,
        row_now.days_since_last_contact,
        -- churn and quality
        CASE
            WHEN
                row_now.has_inactive_14d = 1
                OR row_now.has_usage_drop = 1
                OR row_now.has_no_recent_contact = 1
                THEN 1
            ELSE 0
        END AS is_churn_risk,
        NULLIF(
            CONCAT_WS(
                ',',
                CASE WHEN row_now.has_inactive_14d = 1 THEN 'inactive_14d' END,
                CASE WHEN row_now.has_usage_drop = 1 THEN 'usage_drop' END,
                CASE WHEN row_now.has_no_recent_contact = 1 THEN 'no_recent_contact' END
            ),
            ''
        ) AS churn_risk_reasons,
        COALESCE(
            NULLIF(
                CONCAT_WS(
                    ',',
                    CASE WHEN row_now.has_duplicates = 1 THEN 'duplicate_source_records' END,
                    CASE WHEN row_now.has_no_crm_record = 1 THEN 'no_crm_record' END,
                    CASE WHEN row_now.has_partial_window = 1 THEN 'partial_window' END,
                    CASE WHEN row_now.has_rejected = 1 THEN 'rejected_source_records' END
                ),
                ''
            ),
            'ok'
        ) AS data_quality_flag
    FROM (
        SELECT
            a.company_id,
            a.activity_date,
            d.company_name,
            d.country,
            d.industry_tag,
            d.last_contact_at,
            CASE
                WHEN CAST(d.last_contact_at AS DATE) <= a.activity_date
                    THEN DATEDIFF(DAY, CAST(d.last_contact_at AS DATE), a.activity_date)
            END AS days_since_last_contact,
            CASE WHEN a.churn_risk_reasons LIKE '%inactive_14d%' THEN 1 ELSE 0 END AS has_inactive_14d,
            CASE WHEN a.churn_risk_reasons LIKE '%usage_drop%' THEN 1 ELSE 0 END AS has_usage_drop,
            CASE
                WHEN
                    CAST(d.last_contact_at AS DATE) <= a.activity_date
                    AND DATEDIFF(DAY, CAST(d.last_contact_at AS DATE), a.activity_date) > 30
                    AND a.active_days_30d <= 7
                    THEN 1
                ELSE 0
            END AS has_no_recent_contact,
            CASE
                WHEN a.data_quality_flag LIKE '%duplicate_source_records%' THEN 1 ELSE 0
            END AS has_duplicates,
            CASE WHEN d.crm_snapshot_date IS NULL THEN 1 ELSE 0 END AS has_no_crm_record,
            CASE WHEN a.data_quality_flag LIKE '%partial_window%' THEN 1 ELSE 0 END AS has_partial_window,
            CASE WHEN a.data_quality_flag LIKE '%rejected_source_records%' THEN 1 ELSE 0 END AS has_rejected
        FROM analytics.company_activity_daily AS a
        INNER JOIN dim.companies AS d
            ON a.company_id = d.company_id
        INNER JOIN (
            SELECT latest.company_id
            FROM analytics.company_activity_daily AS latest
            INNER JOIN dim.companies AS dc
                ON latest.company_id = dc.company_id
            WHERE
                latest.activity_date = (
                    SELECT MAX(m.activity_date) FROM analytics.company_activity_daily AS m
                )
                AND EXISTS (
                    SELECT
                        dc.company_name,
                        dc.country,
                        dc.industry_tag,
                        dc.last_contact_at,
                        CASE WHEN dc.crm_snapshot_date IS NULL THEN 1 ELSE 0 END AS no_crm_record
                    EXCEPT
                    SELECT
                        latest.company_name,
                        latest.country,
                        latest.industry_tag,
                        latest.last_contact_at,
                        CASE WHEN latest.data_quality_flag LIKE '%no_crm_record%' THEN 1 ELSE 0 END AS no_crm_record
                )
            GROUP BY latest.company_id
        ) AS changed
            ON a.company_id = changed.company_id
    ) AS row_now
) AS src
    ON
        tgt.company_id = src.company_id
        AND tgt.activity_date = src.activity_date
WHEN MATCHED AND EXISTS (
    SELECT
        src.company_name,
        src.country,
        src.industry_tag,
        src.last_contact_at,
        src.days_since_last_contact,
        src.is_churn_risk,
        src.churn_risk_reasons,
        src.data_quality_flag
    EXCEPT
    SELECT
        tgt.company_name,
        tgt.country,
        tgt.industry_tag,
        tgt.last_contact_at,
        tgt.days_since_last_contact,
        tgt.is_churn_risk,
        tgt.churn_risk_reasons,
        tgt.data_quality_flag
) THEN UPDATE SET
    company_name = src.company_name,
    country = src.country,
    industry_tag = src.industry_tag,
    last_contact_at = src.last_contact_at,
    days_since_last_contact = src.days_since_last_contact,
    is_churn_risk = src.is_churn_risk,
    churn_risk_reasons = src.churn_risk_reasons,
    data_quality_flag = src.data_quality_flag,
    run_id = @run_id,
    updated_at = CAST(@run_ts AS DATETIME2(6));
