"""The staging validation rules, written once as DuckDB SQL over an Arrow batch of input lines.

Both warehouses use these rules: on DuckDB they run inside the warehouse's own connection; for
Azure SQL they run in a private in-memory DuckDB and the checked rows are bulk-inserted. One set
of rules means one canonical id, one timestamp parser and one list of reasons everywhere.

The query reads a registered Arrow view and returns every target column plus `reason` (NULL
for an accepted row) and `q_company_id` (the canonical id of a rejected row, when readable).
Rules apply in a fixed order and the first that fails names the reason. The canonical id is
ids.py's, the lengths and ranges limits.py's (both from schema.py). Usage lines also get
`needs_exact`: the few that Python's strict parser must read (exactjson.py) are checked again by
the same rules with its verdicts joined (usage_check_sql(exact=True)).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from company_activity.staging.csvformat import REPEATED_HEADER
from company_activity.staging.exactjson import EXACT_SCHEMA, LENIENT_JSON, MEASURES
from company_activity.staging.ids import (
    WHITE_SPACE,
    canonical_sql,
    defect_reason_sql,
    defect_sql,
    trimmed_sql,
    visible_sql,
)
from company_activity.staging.limits import ACTIVE_USERS, EVENTS, Measure, text_limit
from company_activity.warehouse.schema import CRM_COMPANIES, PRODUCT_USAGE, QUARANTINE

BATCH_VIEW = "_stg_batch"
#: Python's verdicts on the lines it read (staging/exactjson.py), joined by line number.
EXACT_VIEW = "_stg_exact"

#: Characters trimmed from ids and attributes (bound as $trim_chars): Unicode's White_Space.
TRIM_CHARS = WHITE_SPACE

ISO_DATE = r"\d{4}-\d{2}-\d{2}"

# ISO-8601 date or date-time with an optional Z or numeric offset; nothing else (no 'epoch',
# 'infinity' or zone names, which DuckDB's own cast would accept).
ISO_TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)

# How much of an offending value a reason quotes.
_QUOTE_CHARS = 60

# Column limits (dialect contract, rule 27: bytes for VARCHAR, UTF-16 units for NVARCHAR).
COMPANY_ID_LIMIT = text_limit(PRODUCT_USAGE, "company_id")
RAW_COMPANY_ID_LIMIT = text_limit(PRODUCT_USAGE, "company_id_raw")
CRM_ID_LIMIT = text_limit(CRM_COMPANIES, "company_id")
CRM_RAW_COMPANY_ID_LIMIT = text_limit(CRM_COMPANIES, "company_id_raw")
QUARANTINE_ID_LIMIT = text_limit(QUARANTINE, "company_id")


def shortened_sql(expr: str) -> str:
    """A value shortened to _QUOTE_CHARS characters (and '...'), otherwise as written."""
    return (
        f"CASE WHEN length({expr}) > {_QUOTE_CHARS} "
        f"THEN left({expr}, {_QUOTE_CHARS}) || '...' ELSE {expr} END"
    )


def quoted_sql(expr: str) -> str:
    """An offending value for a reason, shortened; invisible characters shown as <U+XXXX>."""
    return visible_sql(shortened_sql(expr))


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


def _integer_ok(measure: Measure, text: str, value: str) -> str:
    """The common case, cheaply: plain digits that cast back to themselves, within range.

    TRY_CAST alone would round '12.7' to 13 (dialect contract, rule 14)."""
    return f"{text} = CAST({value} AS VARCHAR) AND {value} BETWEEN 0 AND {measure.maximum}"


def _integer_rules(measure: Measure, sent: str, digits: str, value: str) -> str:
    """WHEN branches naming what is wrong with a measure: `sent` is the value as the line
    wrote it (quoted in reasons), `digits` its integer digits when it is integral. A negative
    value is named as such whatever its size (-10^30 is not "out of range (at most ...)")."""
    name, top = measure.name, measure.maximum
    return f"""
            WHEN {sent} IS NULL THEN '{name} is missing'
            WHEN NOT regexp_full_match({digits}, '-?[0-9]+')
                THEN '{name} must be an integer, got ' || {quoted_sql(sent)}
            WHEN regexp_full_match({digits}, '-0*[1-9][0-9]*')
                THEN '{name} must not be negative, got ' || {quoted_sql(sent)}
            WHEN {value} IS NULL OR {value} > {top}
                THEN '{name} is out of range (at most {top}), got ' || {quoted_sql(sent)}"""


# json_transform to VARCHAR unquotes strings and writes other values as JSON text, so one
# parse yields every field. Whether company_id was a JSON string is checked only for the few
# ids that could be something else (a number, true/false, an object or an array).
_USAGE_KEYS = ("company_id", *MEASURES, "date", "ts")
_USAGE_FIELDS = "{" + ",".join(f'"{key}":"VARCHAR"' for key in _USAGE_KEYS) + "}"
_ID_MAY_NOT_BE_STRING = (
    "(TRY_CAST(id_text AS DOUBLE) IS NOT NULL OR id_text IN ('true', 'false') "
    "OR id_text LIKE '{%' OR id_text LIKE '[%')"
)
# Top-level keys the line names with a non-null value among the ones staging reads: when the
# line has no other key, its keys are unique (a duplicate would make json_keys longer).
_KNOWN_KEYS = " + ".join(f"CAST(doc.{key} IS NOT NULL AS INTEGER)" for key in _USAGE_KEYS)
_EXACT_COLUMNS = [name for name in EXACT_SCHEMA.names if name != "src_line_number"]
_MEASURE_TEXTS = ",\n        ".join(
    f"COALESCE({m}_token, doc.{m}) AS {m}_sent, COALESCE({m}_integer, doc.{m}) AS {m}_digits"
    for m in MEASURES
)
_MEASURE_VALUES = ",\n        ".join(
    f"TRY_CAST({m}_digits AS BIGINT) AS {m}_value" for m in MEASURES
)
# A rejected row's canonical id goes to stg.quarantine.company_id when it is a valid id.
_ID_OK = (
    f"id_canonical <> '' AND NOT {defect_sql('id_canonical')} "
    f"AND NOT {QUARANTINE_ID_LIMIT.too_long_sql('id_canonical')}"
)

# Lines Python must read (staging/exactjson.py): a possible trailing comma; a nested object
# beside the keys staging reads (nested under one of those, the line is rejected anyway); a
# measure DuckDB read as a DOUBLE (its text has a point or an exponent, and the line is
# rejected until Python reads it: only rejected lines are looked at for that).
_MEASURE_MAY_BE_DOUBLE = " OR ".join(
    f"contains({m}_digits, '.') OR contains({m}_digits, 'e') OR contains({m}_digits, 'E')"
    for m in MEASURES
)
_LENIENT_OR_NESTED = (
    f"doc IS NOT NULL AND (regexp_matches(raw, '{LENIENT_JSON}') "
    "OR (len(keys) > known_keys AND contains(substr(raw, 2), '{')))"
)


def usage_check_sql(exact: bool) -> str:
    """The usage rules; with `exact`, over lines Python has read (EXACT_VIEW joined)."""
    if exact:
        verdicts = "x.* EXCLUDE (src_line_number)"
        join = f"INNER JOIN {EXACT_VIEW} AS x ON b.src_line_number = x.src_line_number"
        needs_exact = "FALSE"
    else:
        verdicts = ", ".join(f"CAST(NULL AS VARCHAR) AS {name}" for name in _EXACT_COLUMNS)
        join = ""
        needs_exact = (
            "pre_reason IS NULL AND "
            f"(lenient_or_nested OR (reason IS NOT NULL AND ({_MEASURE_MAY_BE_DOUBLE})))"
        )
    return f"""
WITH parsed AS (
    SELECT
        b.src_line_number,
        b.raw,
        b.pre_reason,
        {verdicts},
        -- NULL for text that is not JSON (the rules below say why)
        try(json_transform(b.raw, '{_USAGE_FIELDS}')) AS doc
    FROM {BATCH_VIEW} AS b
    {join}
),

fields AS (
    SELECT
        *,
        doc.company_id AS id_text,
        doc.date AS date_text,
        doc.ts AS ts_text,
        {_MEASURE_TEXTS},
        CASE WHEN doc IS NOT NULL THEN json_keys(raw) END AS keys,
        {_KNOWN_KEYS} AS known_keys
    FROM parsed
),

valued AS (
    SELECT
        *,
        {canonical_sql("id_text")} AS id_canonical,
        {_MEASURE_VALUES},
        {timestamp_sql("ts_text")} AS ts_value,
        COALESCE(duplicate_key, CASE WHEN len(keys) > known_keys
            THEN list_filter(keys, lambda k, i: list_position(keys, k) < i)[1] END) AS dup_key,
        {_LENIENT_OR_NESTED} AS lenient_or_nested
    FROM fields
),

checked AS (
    SELECT
        *,
        CASE
            -- Fast path: every rule holds (byte lengths bound the UTF-16 ones from above).
            WHEN pre_reason IS NULL AND json_reason IS NULL
                AND len(keys) = known_keys
                AND {_integer_ok(ACTIVE_USERS, "active_users_digits", "active_users_value")}
                AND {_integer_ok(EVENTS, "events_digits", "events_value")}
                AND id_canonical <> ''
                AND strlen(id_canonical) <= {COMPANY_ID_LIMIT.size}
                AND strlen(id_text) <= {RAW_COMPANY_ID_LIMIT.size}
                AND NOT {defect_sql("id_canonical")}
                AND NOT {_ID_MAY_NOT_BE_STRING}
                AND (date_text IS NULL OR date_text = $file_date_text)
                AND (ts_text IS NULL OR ts_value IS NOT NULL)
                THEN NULL
            WHEN pre_reason IS NOT NULL THEN pre_reason
            WHEN doc IS NULL THEN CASE
                WHEN {trimmed_sql("raw")} = '' THEN 'empty line'
                WHEN json_valid(raw) THEN 'not a JSON object'
                ELSE 'not valid JSON' END
            WHEN json_reason IS NOT NULL THEN json_reason
            WHEN dup_key IS NOT NULL THEN 'duplicate key "' || {quoted_sql("dup_key")} || '"'
            WHEN id_text IS NULL THEN CASE WHEN json_type(raw) = 'OBJECT'
                THEN 'company_id is missing' ELSE 'not a JSON object' END
            WHEN {_ID_MAY_NOT_BE_STRING} AND json_type(raw, '$.company_id') <> 'VARCHAR'
                THEN 'company_id must be a string, got ' || {quoted_sql("id_text")}
            WHEN id_canonical = '' THEN 'company_id is empty'
            WHEN {defect_sql("id_canonical")} THEN {defect_reason_sql("id_canonical")}
            {COMPANY_ID_LIMIT.rule_sql("id_canonical")}
            {RAW_COMPANY_ID_LIMIT.rule_sql("id_text")}
            {
        _integer_rules(
            ACTIVE_USERS, "active_users_sent", "active_users_digits", "active_users_value"
        )
    }
            {_integer_rules(EVENTS, "events_sent", "events_digits", "events_value")}
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
    TRY_CAST(active_users_value AS INTEGER) AS active_users,
    events_value AS events,
    ts_value AS event_ts,
    CAST($src_file_name AS VARCHAR) AS src_file_name,
    src_line_number,
    CAST($run_id AS VARCHAR) AS run_id,
    CAST($loaded_at AS TIMESTAMP) AS loaded_at,
    raw AS raw_json,
    reason,
    -- the company a rejected line names, when its keys are unique and the id is one staging
    -- would accept
    CASE WHEN reason IS NOT NULL AND dup_key IS NULL AND {_ID_OK}
        THEN id_canonical END AS q_company_id,
    {needs_exact} AS needs_exact
FROM checked
"""


USAGE_CHECK_SQL = usage_check_sql(exact=False)
USAGE_EXACT_CHECK_SQL = usage_check_sql(exact=True)


def _attribute_rule(field: str, column: str) -> str:
    return text_limit(CRM_COMPANIES, column).rule_sql(field)


def _attribute(field: str) -> str:
    """An attribute as stored: trimmed, and NULL when blank."""
    return f"NULLIF({trimmed_sql(field)}, '')"


def _date_value(text: str, four_digit_years: tuple[bool, ...]) -> str:
    """ISO-8601 first, then the CRM_DATE_FORMATS in order, bound as $date_format_0, ...;
    NULL when none reads the text.

    `four_digit_years` says which formats use %Y. DuckDB's %Y also reads a year of one to three
    digits where Python's needs four, so `20/11/25` under `%d/%m/%Y` would be the year 25: such
    a reading counts only from the year 1000, and the next format is tried.
    """
    iso = timestamp_sql(text)
    tries = []
    for index, four_digits in enumerate(four_digit_years):
        read = f"try_strptime({text}, $date_format_{index})"
        tries.append(f"CASE WHEN year({read}) >= 1000 THEN {read} END" if four_digits else read)
    return f"COALESCE({iso}, {', '.join(tries)})" if tries else iso


def crm_check_sql(date_formats: Sequence[str] = ()) -> str:
    """The CRM rules; dates may also match `date_formats` (bound as $date_format_0, ...).

    A record with fewer fields than the header is read with the missing trailing fields
    blank (spreadsheets drop empty trailing cells); one with more is rejected. An unreadable
    last_contact_at does not reject the company: the row is staged with it NULL and the
    issue_* columns name the field, its value and why. A file_date column, when the export
    has one, must hold the snapshot date.
    """
    expected = "ISO-8601 date or timestamp" + (" or a CRM_DATE_FORMATS date" * bool(date_formats))
    years = tuple("Y" in re.findall(r"%(.)", fmt) for fmt in date_formats)
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
        {_date_value("contact_text", years)} AS contact_value,
        CAST({_date_value("file_date_text", years)} AS DATE) AS file_date_value
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
            WHEN {defect_sql("id_canonical")} THEN {defect_reason_sql("id_canonical")}
            {CRM_ID_LIMIT.rule_sql("id_canonical")}
            {CRM_RAW_COMPANY_ID_LIMIT.rule_sql("f_company_id")}
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
    CASE WHEN contact_unreadable THEN {shortened_sql("contact_text")} END AS issue_value,
    CASE WHEN contact_unreadable THEN 'not an {expected}' END AS issue_reason,
    reason,
    -- No id for a repeated header (not a company) or a record with undecodable bytes (U+FFFD
    -- stands in for them, so the id may not be the company's): the model would flag a
    -- company that does not exist.
    CASE
        WHEN {_ID_OK} AND NOT contains(id_canonical, chr(65533))
            AND NOT coalesce(starts_with(pre_reason, '{REPEATED_HEADER}'), FALSE)
            THEN id_canonical
    END AS q_company_id
FROM reasoned
"""


CRM_CHECK_SQL = crm_check_sql()
