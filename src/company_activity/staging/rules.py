"""The staging validation rules, written once as DuckDB SQL over an Arrow batch of input lines.

Both warehouses use these rules: on DuckDB they run inside the warehouse's own connection; for
Azure SQL they run in a private in-memory DuckDB and the checked rows are bulk-inserted. One set
of rules means one canonical id, one timestamp parser and one list of reasons everywhere.

The query reads a registered Arrow view and returns every target column plus `reason` (NULL
for an accepted row) and `q_company_id` (the canonical id of a rejected row, when readable).
Rules apply in a fixed order and the first that fails names the reason.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa

from company_activity.warehouse.schema import CRM_COMPANIES, PRODUCT_USAGE

BATCH_VIEW = "_stg_batch"

#: Characters trimmed from ids and attributes (space, tab, LF, CR).
TRIM_CHARS = " \t\n\r"

ISO_DATE = r"\d{4}-\d{2}-\d{2}"

# ISO-8601 date or date-time with an optional Z or numeric offset; nothing else (no 'epoch',
# 'infinity' or zone names, which DuckDB's own cast would accept).
ISO_TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)

# DuckDB's JSON parser accepts trailing commas, which strict JSON (Python's json module, SQL
# Server's JSON functions) rejects. Accepted lines matching this cheap superset are re-checked
# with Python's parser (see strict_json_error). NaN and Infinity, which DuckDB and Python both
# accept, are rejected wherever staging reads a value (they are not integers, strings or
# timestamps) and tolerated in fields it does not read: finding them everywhere would cost a
# regular expression that doubles the time of the rules.
LENIENT_JSON = r",\s*[}\]]"

# How much of an offending value a reason quotes.
_QUOTE_CHARS = 60


def _max_length(column: str) -> int:
    limit = PRODUCT_USAGE.column(column).max_length
    if limit is None:  # pragma: no cover - a schema change the rules must follow
        raise ValueError(f"stg.product_usage.{column} has no length limit")
    return limit


COMPANY_ID_MAX = _max_length("company_id")
RAW_COMPANY_ID_MAX = _max_length("company_id_raw")


def canonical_sql(expr: str) -> str:
    """The canonical company id: trimmed, lower case (the Python twin is canonical_id)."""
    return f"lower({trimmed_sql(expr)})"


def trimmed_sql(expr: str) -> str:
    """Trim TRIM_CHARS (bound as $trim_chars: a literal would be rebuilt for every row).

    Most values have nothing to trim, and trim() with a character set costs its set-up on every
    row: checking the two ends first is the same result at a third of the cost.
    """
    ends = " OR ".join(
        f"{side}({expr}, chr({ord(char)}))" for side in ("prefix", "suffix") for char in TRIM_CHARS
    )
    return f"CASE WHEN NOT ({ends}) THEN {expr} ELSE trim({expr}, $trim_chars) END"


def canonical_id(text: str) -> str:
    """Python twin of canonical_sql, for tests and messages."""
    return text.strip(TRIM_CHARS).lower()


def utf16_len_sql(expr: str) -> str:
    """Length as SQL Server counts NVARCHAR: UTF-16 units (characters beyond U+FFFF count 2)."""
    return (
        f"CASE WHEN strlen({expr}) = length({expr}) THEN length({expr}) "
        f"ELSE length({expr}) + length(regexp_replace({expr}, "
        f"'[^\\x{{10000}}-\\x{{10FFFF}}]', '', 'g')) END"
    )


def quoted_sql(expr: str) -> str:
    """An offending value for a reason, shortened."""
    return (
        f"CASE WHEN length({expr}) > {_QUOTE_CHARS} "
        f"THEN left({expr}, {_QUOTE_CHARS}) || '...' ELSE {expr} END"
    )


def timestamp_sql(text: str) -> str:
    """Parse ISO-8601 text to a naive UTC timestamp (NULL when it is not ISO-8601).

    With a Z or an offset the instant is converted to UTC; without one the time is taken as
    UTC already. The session time zone plays no part. An offset is a Z, or a + or - after the
    date's ten characters.
    """
    after_date = f"substr({text}, 11)"
    return (
        # The usual shape, cheaply: seconds and a Z (UTC already).
        f"CASE WHEN {text} LIKE '____-__-__T__:__:__Z' "
        f"THEN TRY_CAST(left({text}, 19) AS TIMESTAMP) "
        f"WHEN NOT regexp_full_match({text}, '{ISO_TIMESTAMP}') THEN NULL "
        f"WHEN {text} LIKE '%Z' OR contains({after_date}, '+') OR contains({after_date}, '-') "
        f"THEN make_timestamp(epoch_us(TRY_CAST({text} AS TIMESTAMPTZ))) "
        f"ELSE TRY_CAST({text} AS TIMESTAMP) END"
    )


def _integer_ok(text: str, value: str) -> str:
    """The common case, cheaply: plain digits that cast back to themselves, not negative.

    TRY_CAST alone would round '12.7' to 13 (dialect contract, rule 14)."""
    return f"{text} = CAST({value} AS VARCHAR) AND {value} >= 0"


def _integer_rules(name: str, text: str, value: str) -> str:
    """WHEN branches naming what is wrong with a required non-negative integer field."""
    return f"""
            WHEN {text} IS NULL THEN '{name} is missing'
            WHEN NOT regexp_full_match({text}, '-?[0-9]+')
                THEN '{name} must be an integer, got ' || {quoted_sql(text)}
            WHEN {value} IS NULL THEN '{name} is out of range, got ' || {quoted_sql(text)}
            WHEN {value} < 0 THEN '{name} must not be negative, got ' || {quoted_sql(text)}"""


# json_transform to VARCHAR unquotes strings and writes other values as JSON text, so one
# parse yields every field. Whether company_id was a JSON string is checked only for the few
# ids that could be something else (a number, true/false, an object or an array).
_USAGE_FIELDS = (
    '{"company_id":"VARCHAR","active_users":"VARCHAR","events":"VARCHAR",'
    '"date":"VARCHAR","ts":"VARCHAR"}'
)
_ID_MAY_NOT_BE_STRING = (
    "(TRY_CAST(id_text AS DOUBLE) IS NOT NULL OR id_text IN ('true', 'false') "
    "OR id_text LIKE '{%' OR id_text LIKE '[%')"
)

USAGE_CHECK_SQL = f"""
WITH parsed AS (
    SELECT
        b.src_line_number,
        b.raw,
        b.pre_reason,
        -- json_transform raises on malformed text: only valid lines reach it.
        CASE WHEN json_valid(b.raw) THEN json_transform(b.raw, '{_USAGE_FIELDS}') END AS doc
    FROM {BATCH_VIEW} AS b
),

fields AS (
    SELECT
        src_line_number,
        raw,
        pre_reason,
        doc,
        doc.company_id AS id_text,
        doc.active_users AS users_text,
        doc.events AS events_text,
        doc.date AS date_text,
        doc.ts AS ts_text
    FROM parsed
),

valued AS (
    SELECT
        *,
        {canonical_sql("id_text")} AS id_canonical,
        TRY_CAST(users_text AS INTEGER) AS users_value,
        TRY_CAST(events_text AS BIGINT) AS events_value,
        {timestamp_sql("ts_text")} AS ts_value
    FROM fields
),

checked AS (
    SELECT
        *,
        CASE
            -- Fast path: every rule holds (byte lengths bound the UTF-16 ones from above).
            WHEN pre_reason IS NULL
                AND {_integer_ok("users_text", "users_value")}
                AND {_integer_ok("events_text", "events_value")}
                AND id_canonical <> ''
                AND strlen(id_canonical) <= {COMPANY_ID_MAX}
                AND strlen(id_text) <= {RAW_COMPANY_ID_MAX}
                AND NOT {_ID_MAY_NOT_BE_STRING}
                AND (date_text IS NULL OR date_text = $file_date_text)
                AND (ts_text IS NULL OR ts_value IS NOT NULL)
                THEN NULL
            WHEN pre_reason IS NOT NULL THEN pre_reason
            WHEN doc IS NULL THEN CASE
                WHEN {trimmed_sql("raw")} = '' THEN 'empty line'
                WHEN json_valid(raw) THEN 'not a JSON object'
                ELSE 'not valid JSON' END
            WHEN id_text IS NULL THEN CASE WHEN json_type(raw) = 'OBJECT'
                THEN 'company_id is missing' ELSE 'not a JSON object' END
            WHEN {_ID_MAY_NOT_BE_STRING} AND json_type(raw, '$.company_id') <> 'VARCHAR'
                THEN 'company_id must be a string, got ' || {quoted_sql("id_text")}
            WHEN id_canonical = '' THEN 'company_id is empty'
            WHEN {utf16_len_sql("id_canonical")} > {COMPANY_ID_MAX}
                THEN 'company_id is longer than {COMPANY_ID_MAX} characters'
            WHEN {utf16_len_sql("id_text")} > {RAW_COMPANY_ID_MAX}
                THEN 'company_id_raw is longer than {RAW_COMPANY_ID_MAX} characters'
            {_integer_rules("active_users", "users_text", "users_value")}
            {_integer_rules("events", "events_text", "events_value")}
            WHEN date_text IS NOT NULL AND NOT regexp_full_match(date_text, '{ISO_DATE}')
                THEN 'date must be a YYYY-MM-DD string, got ' || {quoted_sql("date_text")}
            WHEN date_text IS NOT NULL AND date_text <> $file_date_text
                THEN 'date ' || date_text || ' does not match the partition date '
                    || $file_date_text
            WHEN ts_text IS NOT NULL AND ts_value IS NULL
                THEN 'ts is not an ISO-8601 timestamp: ' || {quoted_sql("ts_text")}
        END AS reason
    FROM valued
)

SELECT
    CAST($file_date AS DATE) AS file_date,
    id_canonical AS company_id,
    id_text AS company_id_raw,
    users_value AS active_users,
    events_value AS events,
    ts_value AS event_ts,
    CAST($src_file_name AS VARCHAR) AS src_file_name,
    src_line_number,
    CAST($run_id AS VARCHAR) AS run_id,
    CAST($loaded_at AS TIMESTAMP) AS loaded_at,
    raw AS raw_json,
    reason,
    CASE WHEN reason IS NOT NULL AND id_canonical <> ''
        AND {utf16_len_sql("id_canonical")} <= {COMPANY_ID_MAX}
        THEN id_canonical END AS q_company_id,
    reason IS NULL AND regexp_matches(raw, '{LENIENT_JSON}') AS suspect
FROM checked
"""


def _attribute_rule(field: str, column: str) -> str:
    limit = CRM_COMPANIES.column(column).max_length
    return (
        f"WHEN {utf16_len_sql(field)} > {limit} THEN '{column} is longer than {limit} characters'"
    )


def _attribute(field: str) -> str:
    """An attribute as stored: trimmed, and NULL when blank."""
    return f"NULLIF({trimmed_sql(field)}, '')"


def _date_value(text: str, date_formats: bool) -> str:
    """ISO-8601 first, then (when the load lists any) the CRM_DATE_FORMATS bound as
    $date_formats; NULL when neither reads the text."""
    iso = timestamp_sql(text)
    if not date_formats:
        return iso
    return f"COALESCE({iso}, try_strptime({text}, $date_formats))"


def crm_check_sql(date_formats: bool = False) -> str:
    """The CRM rules; with `date_formats` dates may also match the bound $date_formats.

    A record with fewer fields than the header is read with the missing trailing fields
    blank (spreadsheets drop empty trailing cells); one with more is rejected. An unreadable
    last_contact_at does not reject the company: the row is staged with it NULL and the
    issue_* columns name the field, its value and why. A file_date column, when the export
    has one, must hold the snapshot date.
    """
    expected = "ISO-8601 date or timestamp" + (" or a CRM_DATE_FORMATS date" * date_formats)
    return f"""
WITH fields AS (
    SELECT
        b.*,
        {canonical_sql("b.f_company_id")} AS id_canonical,
        {_attribute("b.f_company_name")} AS name_value,
        {_attribute("b.f_country")} AS country_value,
        {_attribute("b.f_industry_tag")} AS industry_value,
        {_attribute("b.f_last_contact_at")} AS contact_text,
        {_attribute("b.f_file_date")} AS file_date_text
    FROM {BATCH_VIEW} AS b
),

checked AS (
    SELECT
        *,
        {_date_value("contact_text", date_formats)} AS contact_value,
        CAST({_date_value("file_date_text", date_formats)} AS DATE) AS file_date_value
    FROM fields
),

reasoned AS (
    SELECT
        *,
        CASE
            WHEN pre_reason IS NOT NULL THEN pre_reason
            WHEN n_fields > $header_fields
                THEN 'record has ' || n_fields || ' fields, the header has ' || $header_fields
            WHEN f_company_id IS NULL
                THEN 'record has ' || n_fields || ' fields, the header has ' || $header_fields
                    || ': company_id is missing'
            WHEN id_canonical IS NULL OR id_canonical = '' THEN 'company_id is blank'
            WHEN {utf16_len_sql("id_canonical")} > {COMPANY_ID_MAX}
                THEN 'company_id is longer than {COMPANY_ID_MAX} characters'
            WHEN {utf16_len_sql("f_company_id")} > {RAW_COMPANY_ID_MAX}
                THEN 'company_id_raw is longer than {RAW_COMPANY_ID_MAX} characters'
            {_attribute_rule("name_value", "company_name")}
            {_attribute_rule("country_value", "country")}
            {_attribute_rule("industry_value", "industry_tag")}
            WHEN file_date_text IS NOT NULL AND file_date_value IS NULL
                THEN 'file_date is not a date: ' || {quoted_sql("file_date_text")}
            WHEN file_date_value <> CAST($file_date AS DATE)
                THEN 'file_date ' || CAST(file_date_value AS VARCHAR)
                    || ' does not match the snapshot date ' || $file_date_text
        END AS reason,
        contact_text IS NOT NULL AND contact_value IS NULL AS contact_unreadable
    FROM checked
)

SELECT
    CAST($file_date AS DATE) AS snapshot_date,
    id_canonical AS company_id,
    f_company_id AS company_id_raw,
    name_value AS company_name,
    country_value AS country,
    industry_value AS industry_tag,
    contact_value AS last_contact_at,
    CAST($src_file_name AS VARCHAR) AS src_file_name,
    src_line_number,
    CAST($run_id AS VARCHAR) AS run_id,
    CAST($loaded_at AS TIMESTAMP) AS loaded_at,
    raw AS raw_line,
    CASE WHEN contact_unreadable THEN 'last_contact_at' END AS issue_field,
    CASE WHEN contact_unreadable THEN {quoted_sql("contact_text")} END AS issue_value,
    CASE WHEN contact_unreadable THEN 'not an {expected}' END AS issue_reason,
    reason,
    CASE WHEN id_canonical <> '' AND {utf16_len_sql("id_canonical")} <= {COMPANY_ID_MAX}
        THEN id_canonical END AS q_company_id
FROM reasoned
"""


CRM_CHECK_SQL = crm_check_sql()


def strict_json_error(line: str) -> str | None:
    """Why a line is not strict JSON, or None when it is."""
    try:
        json.loads(line)
    except ValueError as exc:
        message = re.sub(r":\s*line \d+ column \d+ \(char \d+\)", "", str(exc))
        return f"not valid JSON ({message})"
    return None


def strict_json_verdicts(suspects: pa.Table) -> pa.Table:
    """The suspect lines (see LENIENT_JSON) that strict JSON refuses, as (row_id, reason).

    `suspects` holds a row id and the raw line in its first two columns.
    """
    ids: list[int] = []
    reasons: list[str] = []
    for row_id, line in zip(*(column.to_pylist() for column in suspects.columns[:2]), strict=True):
        reason = strict_json_error(line)
        if reason is not None:
            ids.append(row_id)
            reasons.append(reason)
    return pa.table({"row_id": pa.array(ids, pa.int64()), "reason": pa.array(reasons, pa.string())})
