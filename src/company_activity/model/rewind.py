"""Undo what a rolled-back date's loads gave dim.companies (part of `rollback --staging`).

The dimension's definitions (docs/company_activity_design.md) name the data they come from:
attributes from the newest merged CRM snapshot holding the company, first_seen_date from the
earliest merged snapshot or usage date. Once a date's staging rows are gone, companies whose
attributes or first_seen_date came from that date get them again from what remains, as if the
date had never been loaded: a stray date (2099-12-31, say) then leaves nothing behind. Metrics
rows before a company's (possibly later) first_seen_date are deleted, since one chronological
pass would never have written them.

The SQL is T-SQL within the dialect contract (docs/dialect-contract.md), run through the
warehouse runner with @run_date, @run_id and @run_ts bound.
"""

from __future__ import annotations

from datetime import date, datetime

from company_activity.warehouse.base import Warehouse

# The dates merged into each target (ops.merge_audits): only merged data shaped the dimension.
_MERGED_SNAPSHOT_DATES = (
    "SELECT ma.run_date FROM ops.merge_audits AS ma WHERE ma.target = 'dim.companies'"
)
_MERGED_USAGE_DATES = "SELECT ma.run_date FROM ops.merge_audits AS ma WHERE ma.target = 'analytics'"

_ATTRIBUTES = f"""
MERGE INTO dim.companies AS tgt
USING (
    SELECT
        co.company_id,
        prev.company_name,
        prev.country,
        prev.industry_tag,
        prev.last_contact_at,
        prev.snapshot_date
    FROM dim.companies AS co
    LEFT JOIN (
        -- the newest remaining merged snapshot holding the company; the later line wins
        SELECT
            ranked.company_id,
            ranked.company_name,
            ranked.country,
            ranked.industry_tag,
            ranked.last_contact_at,
            ranked.snapshot_date
        FROM (
            SELECT
                crm.company_id,
                crm.company_name,
                crm.country,
                crm.industry_tag,
                crm.last_contact_at,
                crm.snapshot_date,
                ROW_NUMBER() OVER (
                    PARTITION BY crm.company_id
                    ORDER BY crm.snapshot_date DESC, crm.src_line_number DESC
                ) AS row_rank
            FROM stg.crm_companies AS crm
            WHERE crm.snapshot_date IN ({_MERGED_SNAPSHOT_DATES})
        ) AS ranked
        WHERE ranked.row_rank = 1
    ) AS prev
        ON co.company_id = prev.company_id
    WHERE co.crm_snapshot_date = CAST(@run_date AS DATE)
) AS src
    ON tgt.company_id = src.company_id
WHEN MATCHED THEN UPDATE
    SET
        company_name = src.company_name,
        country = src.country,
        industry_tag = src.industry_tag,
        last_contact_at = src.last_contact_at,
        crm_snapshot_date = src.snapshot_date,
        run_id = @run_id,
        updated_at = CAST(@run_ts AS DATETIME2(6));
"""

_FIRST_SEEN = f"""
MERGE INTO dim.companies AS tgt
USING (
    SELECT
        named.company_id,
        MIN(named.seen_date) AS first_seen_date
    FROM (
        SELECT
            crm.company_id,
            crm.snapshot_date AS seen_date
        FROM stg.crm_companies AS crm
        WHERE
            crm.snapshot_date IN ({_MERGED_SNAPSHOT_DATES})
            AND crm.company_id IN (
                SELECT moved.company_id
                FROM dim.companies AS moved
                WHERE moved.first_seen_date = CAST(@run_date AS DATE)
            )
        UNION ALL
        SELECT
            pu.company_id,
            pu.file_date AS seen_date
        FROM stg.product_usage AS pu
        WHERE
            pu.file_date IN ({_MERGED_USAGE_DATES})
            AND pu.company_id IN (
                SELECT moved.company_id
                FROM dim.companies AS moved
                WHERE moved.first_seen_date = CAST(@run_date AS DATE)
            )
    ) AS named
    GROUP BY named.company_id
) AS src
    ON tgt.company_id = src.company_id
WHEN MATCHED AND tgt.first_seen_date = CAST(@run_date AS DATE)
    AND src.first_seen_date <> tgt.first_seen_date
    THEN UPDATE
        SET
            first_seen_date = src.first_seen_date,
            run_id = @run_id,
            updated_at = CAST(@run_ts AS DATETIME2(6));
"""

# One chronological pass writes a company's rows from its first_seen_date on only.
_BEFORE_FIRST_SEEN = """
MERGE INTO analytics.company_activity_metrics AS tgt
USING (
    SELECT
        co.company_id,
        co.first_seen_date
    FROM dim.companies AS co
    GROUP BY co.company_id, co.first_seen_date
) AS src
    ON tgt.company_id = src.company_id AND tgt.activity_date < src.first_seen_date
WHEN MATCHED THEN DELETE;
"""


def rewind_dimension(wh: Warehouse, day: date, run_id: str, run_ts: datetime) -> int:
    """After `day`'s staging rows are deleted, take back what they gave dim.companies.

    Runs inside the caller's transaction (the rollback's). Returns the dimension and metrics
    rows changed. A company no remaining row names keeps its values here: the rollback
    retracts such companies as a whole.
    """
    params = {"run_date": day, "run_id": run_id, "run_ts": run_ts}
    changed = wh.execute(_ATTRIBUTES, params)
    changed += wh.execute(_FIRST_SEEN, params)
    return changed + wh.execute(_BEFORE_FIRST_SEEN)
