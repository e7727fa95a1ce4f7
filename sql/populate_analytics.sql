-- analytics.company_activity_metrics for @start_date..@end_date, restating later loaded days.
--
-- The metrics hold what does not depend on the dimension. The view
-- analytics.company_activity_daily (sql/views/) joins in the attributes and what follows from
-- them (days_since_last_contact, no_recent_contact, no_crm_record) and finishes the churn
-- reasons and quality flags, so a CRM change rewrites no row here.
--
-- One row per company per loaded day, from the company's first_seen_date on. Every day from
-- @start_date through the last loaded day is recomputed (a past day's usage moves the
-- windows of the 43 days after it and last_activity_date after that), and only rows whose
-- values change are rewritten, so reruns are no-ops and any order of merges gives the table
-- one chronological pass would. The windows run as ROWS frames over a company x calendar
-- grid that starts 43 days before @start_date and is dense over the 44 days ending at each
-- loaded day; last_activity_date older than the grid is carried forward from each company's
-- latest row before @start_date, so a daily merge reads only its lookback, never all history.
-- A day counts as loaded while its usage load is in effect (see the grid days below), so a
-- failed reload changes nothing and a rolled-back load no longer counts.
-- Parameters: @start_date, @end_date, @run_ts, @run_id.

MERGE INTO analytics.company_activity_metrics AS tgt
USING (
    SELECT
        -- keys
        m.company_id,
        m.activity_date,
        -- daily measures
        m.active_users,
        m.events,
        -- windows
        m.rolling_7d_active_users,
        m.rolling_30d_events,
        m.active_days_30d,
        -- Each ratio n / d is its exact value rounded half away from zero at the column's
        -- scale s, in integer arithmetic (docs/dialect-contract.md, rule 26):
        --   k = (|n| / d) * 10^s + (2 * (|n| % d) * 10^s + d) / (2 * d), signed like n,
        -- and the value is k * 10^-s. The steps are BIGINT: exact on SQL Server; on DuckDB
        -- sqlglot writes a BIGINT quotient as TRUNC of a DOUBLE one, exact while dividend +
        -- divisor < 2^53, which the bounds noted per ratio keep (U = 2^31 - 1, the largest
        -- INT active_users; E = 10^14 - 1, the most events usage_density's DECIMAL(18,4)
        -- holds). k becomes the decimal by a product: DECIMAL(19,0) * DECIMAL(5,4) is
        -- DECIMAL(25,4) on SQL Server (p1 + p2 + 1, s1 + s2: within 38, so no scale is cut)
        -- and DECIMAL(24,4) on DuckDB; both keep every digit and the final CAST changes only
        -- the precision. Types per Microsoft's "Precision, scale, and length (Transact-SQL)".
        -- activity_consistency_30d: n = active_days_30d in 0..30, d = 30, s = 4.
        -- BIGINT steps; DECIMAL(25,4); at most 1.0000, fits DECIMAL(9,4).
        CAST(
            CAST(
                CAST(m.active_days_30d AS BIGINT) / CAST(NULLIF(30, 0) AS BIGINT) * 10000
                + CAST(
                    2 * (CAST(m.active_days_30d AS BIGINT) % CAST(NULLIF(30, 0) AS BIGINT)) * 10000
                    + 30 AS BIGINT
                )
                / CAST(NULLIF(2 * CAST(30 AS BIGINT), 0) AS BIGINT)
                AS DECIMAL(19, 0)
            ) * CAST(0.0001 AS DECIMAL(5, 4))
            AS DECIMAL(9, 4)
        ) AS activity_consistency_30d,
        m.peak_active_users_30d,
        -- usage_density: n = events in 0..E, d = active_users in 1..U, s = 4: dividend +
        -- divisor < 2^47, 2 * (n % d) * 10^4 + d < 2^46, k <= E * 10^4 < 2^63. BIGINT steps;
        -- DECIMAL(25,4); at most 99999999999999.0000, fits DECIMAL(18,4). NULL when d = 0.
        CAST(
            CAST(
                CAST(m.events AS BIGINT) / CAST(NULLIF(m.active_users, 0) AS BIGINT) * 10000
                + CAST(
                    2 * (CAST(m.events AS BIGINT) % CAST(NULLIF(m.active_users, 0) AS BIGINT)) * 10000
                    + m.active_users AS BIGINT
                )
                / CAST(NULLIF(2 * CAST(m.active_users AS BIGINT), 0) AS BIGINT)
                AS DECIMAL(19, 0)
            ) * CAST(0.0001 AS DECIMAL(5, 4))
            AS DECIMAL(18, 4)
        ) AS usage_density,
        -- active_users_dod_pct: |n| = |u(D) - u(D-1)| < U, d = u(D-1) in 1..U, s = 4: every
        -- step < 2^46. BIGINT steps; DECIMAL(25,4); |value| <= 2147483646.0000, fits
        -- DECIMAL(18,4). NULL when d = 0.
        CAST(
            CAST(
                m.dod_sign * (
                    CAST(m.dod_abs AS BIGINT) / CAST(NULLIF(m.users_previous_day, 0) AS BIGINT) * 10000
                    + CAST(
                        2 * (CAST(m.dod_abs AS BIGINT) % CAST(NULLIF(m.users_previous_day, 0) AS BIGINT)) * 10000
                        + m.users_previous_day AS BIGINT
                    )
                    / CAST(NULLIF(2 * CAST(m.users_previous_day AS BIGINT), 0) AS BIGINT)
                )
                AS DECIMAL(19, 0)
            ) * CAST(0.0001 AS DECIMAL(5, 4))
            AS DECIMAL(18, 4)
        ) AS active_users_dod_pct,
        -- active_users_wow_pct: |n| = |users_7d - users_previous_7d| < 7U, d = users_previous_7d
        -- in 1..7U, s = 4: every step < 2^49. BIGINT steps; DECIMAL(25,4); |value| < 7U,
        -- fits DECIMAL(18,4). NULL when d = 0.
        CAST(
            CAST(
                m.wow_sign * (
                    CAST(m.wow_abs AS BIGINT) / CAST(NULLIF(m.users_previous_7d, 0) AS BIGINT) * 10000
                    + CAST(
                        2 * (CAST(m.wow_abs AS BIGINT) % CAST(NULLIF(m.users_previous_7d, 0) AS BIGINT)) * 10000
                        + m.users_previous_7d AS BIGINT
                    )
                    / CAST(NULLIF(2 * CAST(m.users_previous_7d AS BIGINT), 0) AS BIGINT)
                )
                AS DECIMAL(19, 0)
            ) * CAST(0.0001 AS DECIMAL(5, 4))
            AS DECIMAL(18, 4)
        ) AS active_users_wow_pct,
        m.last_activity_date,
        DATEDIFF(DAY, m.last_activity_date, m.activity_date) AS days_since_last_activity,
        -- engagement_score: n and d from the query below, n < 63000U < 2^47, d <= 630U < 2^40,
        -- s = 1. BIGINT steps; DECIMAL(19,0) * DECIMAL(2,1) is DECIMAL(22,1) on SQL Server
        -- (DECIMAL(21,1) on DuckDB); 0.0..100.0 fits DECIMAL(5,1).
        CAST(
            CAST(
                CAST(m.engagement_num AS BIGINT) / CAST(NULLIF(m.engagement_den, 0) AS BIGINT) * 10
                + CAST(
                    2 * (CAST(m.engagement_num AS BIGINT) % CAST(NULLIF(m.engagement_den, 0) AS BIGINT)) * 10
                    + m.engagement_den AS BIGINT
                )
                / CAST(NULLIF(2 * CAST(m.engagement_den AS BIGINT), 0) AS BIGINT)
                AS DECIMAL(19, 0)
            ) * CAST(0.1 AS DECIMAL(2, 1))
            AS DECIMAL(5, 1)
        ) AS engagement_score,
        -- the churn reasons and quality flags that follow from usage alone
        m.has_inactive_14d,
        m.has_usage_drop,
        m.has_duplicate_source_records,
        m.has_partial_window,
        m.has_rejected_source_records
    FROM (
        SELECT
            w.company_id,
            w.calendar_date AS activity_date,
            w.active_users,
            w.events,
            w.users_7d AS rolling_7d_active_users,
            w.events_30d AS rolling_30d_events,
            w.active_days_30d,
            w.peak_users_30d AS peak_active_users_30d,
            -- the ratios' numerators and denominators (rounded exactly in the outer SELECT)
            CAST(w.users_previous_day AS BIGINT) AS users_previous_day,
            CAST(w.users_previous_7d AS BIGINT) AS users_previous_7d,
            ABS(CAST(w.active_users AS BIGINT) - w.users_previous_day) AS dod_abs,
            CASE WHEN w.active_users < w.users_previous_day THEN -1 ELSE 1 END AS dod_sign,
            ABS(CAST(w.users_7d AS BIGINT) - w.users_previous_7d) AS wow_abs,
            CASE WHEN w.users_7d < w.users_previous_7d THEN -1 ELSE 1 END AS wow_sign,
            -- 100 * (0.5 * a / 30 + 0.5 * min(1, (u7 / 7) / (u30 / 30))) with a = active_days_30d,
            -- u7 = users_7d, u30 = users_30d: 5a / 3 + 50 when 30 u7 >= 7 u30 (or 5a / 3 when
            -- u30 = 0), else (35 a u30 + 4500 u7) / (21 u30)
            CAST(CASE
                WHEN w.users_30d = 0 THEN 5 * w.active_days_30d
                WHEN 30 * w.users_7d >= 7 * w.users_30d THEN 5 * w.active_days_30d + 150
                ELSE 35 * w.active_days_30d * CAST(w.users_30d AS BIGINT) + 4500 * CAST(w.users_7d AS BIGINT)
            END AS BIGINT) AS engagement_num,
            CAST(CASE
                WHEN w.users_30d = 0 OR 30 * w.users_7d >= 7 * w.users_30d THEN 3
                ELSE 21 * CAST(w.users_30d AS BIGINT)
            END AS BIGINT) AS engagement_den,
            -- the grid holds the last 44 days; older activity comes from the carried row
            COALESCE(w.last_active_in_grid, carried.last_activity_date) AS last_activity_date,
            CASE
                WHEN w.events_14d = 0 AND w.events_prior_30d > 0 THEN 1 ELSE 0
            END AS has_inactive_14d,
            CASE
                WHEN w.users_previous_7d >= 7 AND 2 * w.users_7d < w.users_previous_7d THEN 1
                ELSE 0
            END AS has_usage_drop,
            CASE WHEN w.record_count > 1 THEN 1 ELSE 0 END AS has_duplicate_source_records,
            CASE WHEN w.loaded_days_30d < 30 THEN 1 ELSE 0 END AS has_partial_window,
            CASE WHEN rejected.company_id IS NULL THEN 0 ELSE 1 END AS has_rejected_source_records
        FROM (
            -- windows over the dense grid, in calendar days ending at the row's day
            SELECT
                g.company_id,
                g.first_seen_date,
                g.calendar_date,
                g.is_loaded,
                g.active_users,
                g.events,
                g.record_count,
                SUM(CAST(g.active_users AS BIGINT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 6 PRECEDING AND CURRENT ROW
                ) AS users_7d,
                SUM(CAST(g.active_users AS BIGINT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 13 PRECEDING AND 7 PRECEDING
                ) AS users_previous_7d,
                SUM(CAST(g.active_users AS BIGINT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 29 PRECEDING AND CURRENT ROW
                ) AS users_30d,
                LAG(g.active_users, 1) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                ) AS users_previous_day,
                MAX(g.active_users) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 29 PRECEDING AND CURRENT ROW
                ) AS peak_users_30d,
                SUM(CAST(g.events AS BIGINT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 29 PRECEDING AND CURRENT ROW
                ) AS events_30d,
                SUM(CAST(g.events AS BIGINT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 13 PRECEDING AND CURRENT ROW
                ) AS events_14d,
                SUM(CAST(g.events AS BIGINT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 43 PRECEDING AND 14 PRECEDING
                ) AS events_prior_30d,
                SUM(CAST(g.is_active AS INT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 29 PRECEDING AND CURRENT ROW
                ) AS active_days_30d,
                SUM(CAST(g.is_loaded AS INT)) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN 29 PRECEDING AND CURRENT ROW
                ) AS loaded_days_30d,
                MAX(CASE WHEN g.is_active = 1 THEN g.calendar_date END) OVER (
                    PARTITION BY g.company_id ORDER BY g.calendar_date
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                ) AS last_active_in_grid
            FROM (
                -- the grid: every company x every grid day; a day without a usage load in
                -- effect or without a record counts as zero
                SELECT
                    co.company_id,
                    co.first_seen_date,
                    grid_day.calendar_date,
                    grid_day.is_loaded,
                    COALESCE(day_usage.active_users, 0) AS active_users,
                    COALESCE(day_usage.events, 0) AS events,
                    COALESCE(day_usage.record_count, 0) AS record_count,
                    CASE WHEN day_usage.active_users > 0 OR day_usage.events > 0 THEN 1 ELSE 0 END AS is_active
                FROM dim.companies AS co
                CROSS JOIN (
                    -- Grid days: each loaded day from 43 days before @start_date on, with the
                    -- 43 days before it that its windows read. Only loaded days get rows, so
                    -- the frames are dense where they are read, and a day further than 43 days
                    -- from every loaded day cannot change a row: a load far ahead (a stray
                    -- date) costs one more window, not every day up to it.
                    SELECT
                        cal.calendar_date,
                        MAX(CASE WHEN cal.calendar_date = loaded.file_date THEN 1 ELSE 0 END) AS is_loaded
                    FROM dim.calendar AS cal
                    INNER JOIN (
                        -- usage loads in effect: of the runs that changed staging (succeeded,
                        -- or undone by a rollback; a failed run changed nothing), the latest
                        -- of a day counts, and it succeeded
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
                                AND la.file_date >= CAST(DATEADD(DAY, -43, CAST(@start_date AS DATE)) AS DATE)
                        ) AS latest_load
                        WHERE latest_load.run_rank = 1 AND latest_load.status = 'succeeded'
                    ) AS loaded
                        ON
                            cal.calendar_date >= CAST(DATEADD(DAY, -43, loaded.file_date) AS DATE)
                            AND cal.calendar_date <= loaded.file_date
                    WHERE cal.calendar_date >= CAST(DATEADD(DAY, -43, CAST(@start_date AS DATE)) AS DATE)
                    GROUP BY cal.calendar_date
                ) AS grid_day
                LEFT JOIN (
                    -- one record per company and day: the latest ts wins, ties the later line
                    SELECT
                        ranked.company_id,
                        ranked.file_date,
                        ranked.active_users,
                        ranked.events,
                        ranked.record_count
                    FROM (
                        SELECT
                            src_rows.company_id,
                            src_rows.file_date,
                            src_rows.active_users,
                            src_rows.events,
                            COUNT(*) OVER (
                                PARTITION BY src_rows.company_id, src_rows.file_date
                            ) AS record_count,
                            ROW_NUMBER() OVER (
                                PARTITION BY src_rows.company_id, src_rows.file_date
                                ORDER BY
                                    src_rows.event_ts DESC,
                                    src_rows.src_file_name DESC,
                                    src_rows.src_line_number DESC
                            ) AS row_rank
                        FROM (
                            SELECT
                                pu.company_id,
                                pu.file_date,
                                pu.active_users,
                                pu.events,
                                pu.event_ts,
                                pu.src_file_name,
                                pu.src_line_number
                            FROM stg.product_usage AS pu
                            WHERE pu.file_date >= CAST(DATEADD(DAY, -43, CAST(@start_date AS DATE)) AS DATE)
                        ) AS src_rows
                    ) AS ranked
                    WHERE ranked.row_rank = 1
                ) AS day_usage
                    ON
                        co.company_id = day_usage.company_id
                        AND grid_day.calendar_date = day_usage.file_date
                        AND grid_day.is_loaded = 1
            ) AS g
        ) AS w
        LEFT JOIN analytics.company_activity_metrics AS carried
            ON
                w.company_id = carried.company_id
                AND carried.activity_date = (
                    SELECT MAX(earlier.activity_date)
                    FROM analytics.company_activity_metrics AS earlier
                    WHERE earlier.activity_date < CAST(@start_date AS DATE)
                )
        LEFT JOIN (
            SELECT
                q.company_id,
                q.file_date
            FROM stg.quarantine AS q
            WHERE
                q.source = 'usage'
                AND q.company_id IS NOT NULL
                AND q.file_date >= CAST(@start_date AS DATE)
            GROUP BY q.company_id, q.file_date
        ) AS rejected
            ON w.company_id = rejected.company_id AND w.calendar_date = rejected.file_date
        WHERE
            w.calendar_date >= CAST(@start_date AS DATE)
            AND w.calendar_date >= w.first_seen_date
            AND w.is_loaded = 1
    ) AS m
) AS src
    ON
        tgt.company_id = src.company_id
        AND tgt.activity_date = src.activity_date
        -- every source row is on or after @start_date: lets the engine skip older rows
        AND tgt.activity_date >= CAST(@start_date AS DATE)
-- Null-safe "some value differs", column by column: EXISTS (SELECT src.. EXCEPT SELECT
-- tgt..) says the same, but DuckDB plans it as hash aggregates over every column of
-- every source row, which was most of a backfill's merge (docs/performance.md).
WHEN MATCHED AND (
    tgt.active_users <> src.active_users
    OR tgt.events <> src.events
    OR tgt.rolling_7d_active_users <> src.rolling_7d_active_users
    OR tgt.rolling_30d_events <> src.rolling_30d_events
    OR tgt.active_days_30d <> src.active_days_30d
    OR tgt.activity_consistency_30d <> src.activity_consistency_30d
    OR tgt.peak_active_users_30d <> src.peak_active_users_30d
    OR tgt.usage_density <> src.usage_density
    OR (tgt.usage_density IS NULL AND src.usage_density IS NOT NULL)
    OR (tgt.usage_density IS NOT NULL AND src.usage_density IS NULL)
    OR tgt.active_users_dod_pct <> src.active_users_dod_pct
    OR (tgt.active_users_dod_pct IS NULL AND src.active_users_dod_pct IS NOT NULL)
    OR (tgt.active_users_dod_pct IS NOT NULL AND src.active_users_dod_pct IS NULL)
    OR tgt.active_users_wow_pct <> src.active_users_wow_pct
    OR (tgt.active_users_wow_pct IS NULL AND src.active_users_wow_pct IS NOT NULL)
    OR (tgt.active_users_wow_pct IS NOT NULL AND src.active_users_wow_pct IS NULL)
    OR tgt.last_activity_date <> src.last_activity_date
    OR (tgt.last_activity_date IS NULL AND src.last_activity_date IS NOT NULL)
    OR (tgt.last_activity_date IS NOT NULL AND src.last_activity_date IS NULL)
    OR tgt.days_since_last_activity <> src.days_since_last_activity
    OR (tgt.days_since_last_activity IS NULL AND src.days_since_last_activity IS NOT NULL)
    OR (tgt.days_since_last_activity IS NOT NULL AND src.days_since_last_activity IS NULL)
    OR tgt.engagement_score <> src.engagement_score
    OR tgt.has_inactive_14d <> src.has_inactive_14d
    OR tgt.has_usage_drop <> src.has_usage_drop
    OR tgt.has_duplicate_source_records <> src.has_duplicate_source_records
    OR tgt.has_partial_window <> src.has_partial_window
    OR tgt.has_rejected_source_records <> src.has_rejected_source_records
)
    THEN UPDATE
        SET
            active_users = src.active_users,
            events = src.events,
            rolling_7d_active_users = src.rolling_7d_active_users,
            rolling_30d_events = src.rolling_30d_events,
            active_days_30d = src.active_days_30d,
            activity_consistency_30d = src.activity_consistency_30d,
            peak_active_users_30d = src.peak_active_users_30d,
            usage_density = src.usage_density,
            active_users_dod_pct = src.active_users_dod_pct,
            active_users_wow_pct = src.active_users_wow_pct,
            last_activity_date = src.last_activity_date,
            days_since_last_activity = src.days_since_last_activity,
            engagement_score = src.engagement_score,
            has_inactive_14d = src.has_inactive_14d,
            has_usage_drop = src.has_usage_drop,
            has_duplicate_source_records = src.has_duplicate_source_records,
            has_partial_window = src.has_partial_window,
            has_rejected_source_records = src.has_rejected_source_records,
            run_id = @run_id,
            updated_at = CAST(@run_ts AS DATETIME2(6))
WHEN NOT MATCHED BY TARGET THEN INSERT (
    company_id,
    activity_date,
    active_users,
    events,
    rolling_7d_active_users,
    rolling_30d_events,
    active_days_30d,
    activity_consistency_30d,
    peak_active_users_30d,
    usage_density,
    active_users_dod_pct,
    active_users_wow_pct,
    last_activity_date,
    days_since_last_activity,
    engagement_score,
    has_inactive_14d,
    has_usage_drop,
    has_duplicate_source_records,
    has_partial_window,
    has_rejected_source_records,
    run_id,
    created_at,
    updated_at
) VALUES (
    src.company_id,
    src.activity_date,
    src.active_users,
    src.events,
    src.rolling_7d_active_users,
    src.rolling_30d_events,
    src.active_days_30d,
    src.activity_consistency_30d,
    src.peak_active_users_30d,
    src.usage_density,
    src.active_users_dod_pct,
    src.active_users_wow_pct,
    src.last_activity_date,
    src.days_since_last_activity,
    src.engagement_score,
    src.has_inactive_14d,
    src.has_usage_drop,
    src.has_duplicate_source_records,
    src.has_partial_window,
    src.has_rejected_source_records,
    @run_id,
    CAST(@run_ts AS DATETIME2(6)),
    CAST(@run_ts AS DATETIME2(6))
);
