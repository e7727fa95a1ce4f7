-- dim.companies (SCD1) from the CRM snapshots of @start_date..@end_date.
-- The view analytics.company_activity_daily joins the dimension, so its rows show the changes
-- at once; no analytics row is rewritten.
--
-- Order independent: a snapshot never overwrites attributes taken from a newer one, and
-- first_seen_date only moves earlier, so merging the snapshots in any order (or a range at
-- once) gives the same dimension. A company absent from a snapshot is kept.
-- Parameters: @start_date, @end_date, @run_ts, @run_id.

MERGE INTO dim.companies AS tgt
USING (
    SELECT
        -- keys
        snap.company_id,
        -- attributes: the newest snapshot wins, whether it is this one or already merged
        CASE
            WHEN cur.crm_snapshot_date > snap.snapshot_date THEN cur.company_name
            ELSE snap.company_name
        END AS company_name,
        CASE
            WHEN cur.crm_snapshot_date > snap.snapshot_date THEN cur.country
            ELSE snap.country
        END AS country,
        CASE
            WHEN cur.crm_snapshot_date > snap.snapshot_date THEN cur.industry_tag
            ELSE snap.industry_tag
        END AS industry_tag,
        CASE
            WHEN cur.crm_snapshot_date > snap.snapshot_date THEN cur.last_contact_at
            ELSE snap.last_contact_at
        END AS last_contact_at,
        CASE
            WHEN cur.crm_snapshot_date > snap.snapshot_date THEN cur.crm_snapshot_date
            ELSE snap.snapshot_date
        END AS crm_snapshot_date,
        -- first seen: the earliest CRM snapshot or usage date known so far
        CASE
            WHEN cur.first_seen_date < snap.first_snapshot_date THEN cur.first_seen_date
            ELSE snap.first_snapshot_date
        END AS first_seen_date
    FROM (
        SELECT
            crm.company_id,
            crm.snapshot_date,
            crm.company_name,
            crm.country,
            crm.industry_tag,
            crm.last_contact_at,
            MIN(crm.snapshot_date) OVER (PARTITION BY crm.company_id) AS first_snapshot_date,
            -- newest snapshot in the range; within one file the later line wins
            ROW_NUMBER() OVER (
                PARTITION BY crm.company_id
                ORDER BY crm.snapshot_date DESC, crm.src_line_number DESC
            ) AS row_rank
        FROM stg.crm_companies AS crm
        WHERE
            crm.snapshot_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)
            AND crm.snapshot_date IN (
                -- snapshot loads in effect: the latest run of a date that changed staging
                -- (succeeded or rolled back; a failed run changed nothing) succeeded
                SELECT latest_load.file_date
                FROM (
                    SELECT
                        la.file_date,
                        la.status,
                        ROW_NUMBER() OVER (
                            PARTITION BY la.file_date
                            ORDER BY la.started_at DESC, la.ended_at DESC, la.run_id DESC
                        ) AS run_rank
                    FROM ops.load_audits AS la
                    WHERE
                        la.source = 'crm'
                        AND la.status IN ('succeeded', 'rolled_back')
                        AND la.file_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)
                ) AS latest_load
                WHERE latest_load.run_rank = 1 AND latest_load.status = 'succeeded'
            )
    ) AS snap
    LEFT JOIN dim.companies AS cur
        ON snap.company_id = cur.company_id
    WHERE snap.row_rank = 1
) AS src
    ON tgt.company_id = src.company_id
WHEN MATCHED AND EXISTS (
    SELECT
        src.company_name,
        src.country,
        src.industry_tag,
        src.last_contact_at,
        src.crm_snapshot_date,
        src.first_seen_date
    EXCEPT
    SELECT
        tgt.company_name,
        tgt.country,
        tgt.industry_tag,
        tgt.last_contact_at,
        tgt.crm_snapshot_date,
        tgt.first_seen_date
)
    THEN UPDATE
        SET
            company_name = src.company_name,
            country = src.country,
            industry_tag = src.industry_tag,
            last_contact_at = src.last_contact_at,
            crm_snapshot_date = src.crm_snapshot_date,
            first_seen_date = src.first_seen_date,
            run_id = @run_id,
            updated_at = CAST(@run_ts AS DATETIME2(6))
WHEN NOT MATCHED BY TARGET THEN INSERT (
    company_id,
    company_name,
    country,
    industry_tag,
    last_contact_at,
    crm_snapshot_date,
    first_seen_date,
    run_id,
    created_at,
    updated_at
) VALUES (
    src.company_id,
    src.company_name,
    src.country,
    src.industry_tag,
    src.last_contact_at,
    src.crm_snapshot_date,
    src.first_seen_date,
    @run_id,
    CAST(@run_ts AS DATETIME2(6)),
    CAST(@run_ts AS DATETIME2(6))
);
