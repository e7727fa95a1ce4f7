-- dim.companies: companies seen in the usage of @start_date..@end_date.
--
-- Runs before populate_analytics.sql in the merge_analytics step (usage is loaded after
-- the CRM dimension merge). Order independent: first_seen_date only moves earlier.
-- Parameters: @start_date, @end_date, @run_ts, @run_id.

-- Companies seen in usage enter the dimension (null attributes until the CRM lists them),
-- and first_seen_date moves earlier when usage predates it.
MERGE INTO dim.companies AS tgt
USING (
    SELECT
        seen.company_id,
        CASE
            WHEN cur.first_seen_date < seen.file_date THEN cur.first_seen_date
            ELSE seen.file_date
        END AS first_seen_date
    FROM (
        SELECT
            pu.company_id,
            pu.file_date,
            ROW_NUMBER() OVER (
                PARTITION BY pu.company_id
                ORDER BY pu.file_date
            ) AS row_rank
        FROM stg.product_usage AS pu
        INNER JOIN (
            -- usage loads in effect for the range: the latest run of a day that changed
            -- staging (succeeded or rolled back; a failed run changed nothing) succeeded
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
                    la.source = 'usage'
                    AND la.status IN ('succeeded', 'rolled_back')
                    AND la.file_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)
            ) AS latest_load
            WHERE latest_load.run_rank = 1 AND latest_load.status = 'succeeded'
        ) AS loaded
            ON pu.file_date = loaded.file_date
        WHERE pu.file_date BETWEEN CAST(@start_date AS DATE) AND CAST(@end_date AS DATE)
    ) AS seen
    LEFT JOIN dim.companies AS cur
        ON seen.company_id = cur.company_id
    WHERE seen.row_rank = 1
) AS src
    ON tgt.company_id = src.company_id
WHEN MATCHED AND src.first_seen_date < tgt.first_seen_date
    THEN UPDATE
        SET
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
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    src.first_seen_date,
    @run_id,
    CAST(@run_ts AS DATETIME2(6)),
    CAST(@run_ts AS DATETIME2(6))
);
