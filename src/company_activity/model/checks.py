"""The data-quality checks, declared in one place: what each measures, when it runs, what a
breach does (its action) and the threshold, both changeable by a setting.

A check runs after the step that produced its data (`stage`): the CRM checks after load_crm,
the usage checks after load_usage, the model checks in validate. Each result says the
measured value, the threshold, the outcome (pass, warn or fail) and a message for people;
the pipeline stores it in ops.check_results and gates the date on it (a fail fails the date).
docs/runbook.md says what each check means and what the operator does when it fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from company_activity.model.validation import (
    ERROR,
    WARNING,
    Check,
    CheckFn,
    ValidationResult,
    usage_drop_check,
)
from company_activity.settings import Settings
from company_activity.warehouse.base import Warehouse

PASS, WARN, FAIL = "pass", "warn", "fail"
OUTCOMES = (PASS, WARN, FAIL)

CRM, USAGE, MODEL = "crm", "usage", "model"  # stages: after load_crm, after load_usage, validate


@dataclass(frozen=True)
class CheckRule:
    """One declared check: its name, stage, action on a breach (fail or warn), threshold
    and the settings that change them (empty: a fixed invariant of the model)."""

    name: str
    stage: str
    action: str
    threshold: float | None
    settings: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class CheckResult:
    """One check's result for one date."""

    name: str
    outcome: str  # pass | warn | fail
    value: float | None
    threshold: float | None
    message: str

    def line(self) -> str:
        return f"{self.name}: {self.message}"


# The validation checks (model/validation.py): invariants, not tunable; their breach action.
_VALIDATION_RULES = {
    "usage_loaded": "a completed usage load exists for the date",
    "unique_keys": "one analytics row per company and date, one dimension row per company",
    "canonical_keys": "every company id trimmed and lower case",
    "grid_complete": "a row for every company seen by the date, none for unknown ones",
    "usage_companies_present": "every company with usage has a row",
    "value_ranges": "measures and scores within their ranges",
}


def declared_checks(settings: Settings) -> dict[str, CheckRule]:
    """Every check by name, with the actions and thresholds these settings give."""
    rules = [
        CheckRule(
            "crm_rejected",
            CRM,
            settings.crm_rejected_action,
            settings.crm_rejected_share,
            ("CRM_REJECTED_SHARE", "CRM_REJECTED_ACTION"),
            "share of the CRM snapshot's rows rejected; a snapshot with no accepted row "
            "always fails",
        ),
        CheckRule(
            "crm_shrink",
            CRM,
            settings.crm_shrink_action,
            settings.crm_shrink_share,
            ("CRM_SHRINK_SHARE", "CRM_SHRINK_ACTION"),
            "share of the previous CRM snapshot's companies missing from this one",
        ),
        CheckRule(
            "crm_fields_nulled",
            CRM,
            settings.crm_nulled_action,
            settings.crm_nulled_share,
            ("CRM_NULLED_SHARE", "CRM_NULLED_ACTION"),
            "share of the snapshot's staged rows with an unreadable field set NULL "
            "(last_contact_at; the row's issue_* columns say which value and why)",
        ),
        CheckRule(
            "usage_rows",
            USAGE,
            settings.usage_min_rows_action,
            float(settings.usage_min_rows),
            ("USAGE_MIN_ROWS", "USAGE_MIN_ROWS_ACTION"),
            "usage rows staged for the day, at least the threshold (0 allows empty days)",
        ),
        CheckRule(
            "usage_rejected",
            USAGE,
            settings.usage_rejected_action,
            settings.usage_rejected_share,
            ("USAGE_REJECTED_SHARE", "USAGE_REJECTED_ACTION"),
            "share of the day's usage lines rejected",
        ),
        CheckRule(
            "usage_volume",
            MODEL,
            settings.usage_drop_action,
            settings.usage_drop_threshold,
            ("USAGE_DROP_THRESHOLD", "USAGE_DROP_ACTION"),
            "the day's usage rows as a share of the trailing 7 loaded days' average",
        ),
        *(CheckRule(n, MODEL, FAIL, 0, (), d) for n, d in _VALIDATION_RULES.items()),
        CheckRule(
            "flags",
            MODEL,
            WARN,
            0,
            (),
            "analytics rows flagged for dropped source records (duplicates or rejects)",
        ),
    ]
    return {rule.name: rule for rule in rules}


def _judge(rule: CheckRule, breached: bool) -> str:
    return (FAIL if rule.action == FAIL else WARN) if breached else PASS


def _latest_audit(wh: Warehouse, source: str, day: date) -> tuple[int, int, int, int] | None:
    """(lines read, staged, rejected, fields nulled) of the date's latest succeeded load of a
    source."""
    rows = wh.query(
        "SELECT a.lines_read, a.lines_staged, a.lines_rejected, a.fields_nulled FROM ("
        " SELECT lines_read, lines_staged, lines_rejected, COALESCE(fields_nulled, 0)"
        " AS fields_nulled, ROW_NUMBER() OVER ("
        "  ORDER BY ended_at DESC, run_id DESC) AS rn FROM ops.load_audits"
        " WHERE source = @source AND file_date = CAST(@run_date AS DATE)"
        " AND status = 'succeeded') AS a WHERE a.rn = 1",
        {"source": source, "run_date": day},
    )
    return tuple(int(v) for v in rows[0]) if rows else None  # type: ignore[return-value]


def _share_rejected(wh: Warehouse, rule: CheckRule, source: str, day: date) -> CheckResult:
    audit = _latest_audit(wh, source, day)
    read, staged, rejected, _ = audit or (0, 0, 0, 0)
    share = rejected / read if read else 0.0
    limit = rule.threshold if rule.threshold is not None else 1.0
    message = f"{rejected:,} of {read:,} {source} lines rejected ({share:.1%}; limit {limit:.1%})"
    outcome = _judge(rule, share > limit)
    if source == "crm" and staged == 0:
        # A snapshot with no accepted row would leave the dimension as it was: never fine.
        outcome = FAIL
        message = (
            f"no CRM row accepted: {rejected:,} of {read:,} rejected; "
            "see stg.quarantine where source = 'crm'"
        )
    elif rejected:
        message += f"; see stg.quarantine where source = '{source}'"
    return CheckResult(rule.name, outcome, round(share, 4), limit, message)


def _crm_nulled(wh: Warehouse, rule: CheckRule, day: date) -> CheckResult:
    _, staged, _, nulled = _latest_audit(wh, "crm", day) or (0, 0, 0, 0)
    share = nulled / staged if staged else 0.0
    limit = rule.threshold if rule.threshold is not None else 1.0
    message = (
        f"{nulled:,} of {staged:,} staged CRM rows have an unreadable field set NULL "
        f"({share:.1%}; limit {limit:.1%})"
    )
    if nulled:
        message += (
            "; see stg.crm_companies where issue_field IS NOT NULL (CRM_DATE_FORMATS may "
            "need the export's date format)"
        )
    return CheckResult(rule.name, _judge(rule, share > limit), round(share, 4), limit, message)


def _crm_shrink(wh: Warehouse, rule: CheckRule, day: date) -> CheckResult:
    limit = rule.threshold if rule.threshold is not None else 1.0
    previous = wh.scalar(
        "SELECT MAX(snapshot_date) FROM stg.crm_companies "
        "WHERE snapshot_date < CAST(@run_date AS DATE)",
        {"run_date": day},
    )
    if previous is None:
        return CheckResult(rule.name, PASS, 0.0, limit, "no earlier snapshot to compare")
    rows = wh.query(
        "SELECT p.company_id, c.company_id FROM"
        " (SELECT DISTINCT company_id FROM stg.crm_companies"
        "  WHERE snapshot_date = CAST(@previous AS DATE)) AS p"
        " LEFT JOIN (SELECT DISTINCT company_id FROM stg.crm_companies"
        "  WHERE snapshot_date = CAST(@run_date AS DATE)) AS c ON c.company_id = p.company_id",
        {"previous": previous, "run_date": day},
    )
    vanished = sorted(str(r[0]) for r in rows if r[1] is None)
    share = len(vanished) / len(rows) if rows else 0.0
    message = (
        f"{len(vanished):,} of the {len(rows):,} companies in the {previous} snapshot are "
        f"missing ({share:.1%}; limit {limit:.1%})"
    )
    if vanished:
        message += f", e.g. {', '.join(vanished[:3])}"
    return CheckResult(rule.name, _judge(rule, share > limit), round(share, 4), limit, message)


def _usage_rows(wh: Warehouse, rule: CheckRule, day: date) -> CheckResult:
    rows = int(
        wh.scalar(
            "SELECT COUNT(*) FROM stg.product_usage WHERE file_date = CAST(@run_date AS DATE)",
            {"run_date": day},
        )
        or 0
    )
    minimum = rule.threshold or 0.0
    breached = rows < minimum
    message = f"{rows:,} usage rows staged (minimum {minimum:g})"
    if breached:
        message += (
            "; an empty day is far more often a broken API than a quiet one: check the API, "
            "then re-run the date (USAGE_MIN_ROWS=0 allows empty days)"
        )
    return CheckResult(rule.name, _judge(rule, breached), float(rows), minimum, message)


def run_stage_checks(
    wh: Warehouse, day: date, stage: str, rules: dict[str, CheckRule]
) -> list[CheckResult]:
    """The CRM or usage checks of a date, after its load."""
    results = []
    for rule in rules.values():
        if rule.stage != stage:
            continue
        if rule.name == "crm_rejected":
            results.append(_share_rejected(wh, rule, "crm", day))
        elif rule.name == "crm_shrink":
            results.append(_crm_shrink(wh, rule, day))
        elif rule.name == "crm_fields_nulled":
            results.append(_crm_nulled(wh, rule, day))
        elif rule.name == "usage_rows":
            results.append(_usage_rows(wh, rule, day))
        elif rule.name == "usage_rejected":
            results.append(_share_rejected(wh, rule, "usage", day))
    return results


def usage_drop_rule_check(rules: dict[str, CheckRule]) -> CheckFn:
    """The usage-drop check for validate() (model/validation.py), as the rules declare it."""
    rule = rules["usage_volume"]
    return usage_drop_check(rule.threshold or 0.0, rule.action)


# The value each validation check measures (its details' counts).
_MEASURED = {
    "unique_keys": ("analytics", "dim"),
    "canonical_keys": ("not_canonical",),
    "grid_complete": ("missing", "extra"),
    "usage_companies_present": ("missing",),
    "value_ranges": ("rows",),
}


def _measured(check: Check) -> float | None:
    details = check.details
    if check.name == "usage_volume":
        average = details.get("trailing_average")
        return round(details["rows"] / average, 4) if average else None
    if check.name == "usage_loaded":
        return 1.0 if check.passed else 0.0
    if check.name == "flags":
        flags = details.get("flags", {})
        dropped = ("duplicate_source_records", "rejected_source_records")
        return float(sum(int(flags.get(k, 0)) for k in dropped))
    if check.name == "layer_counts":
        return float(details.get("analytics rows", 0))
    keys: Sequence[str] = _MEASURED.get(check.name, ())
    return float(sum(int(details.get(k, 0)) for k in keys)) if keys else None


def validation_results(result: ValidationResult, rules: dict[str, CheckRule]) -> list[CheckResult]:
    """A date's validation checks as check results (informational ones pass)."""
    results = []
    for check in result.checks:
        rule = rules.get(check.name)
        if check.passed:
            outcome = PASS
        elif check.severity == ERROR:
            outcome = FAIL
        elif check.severity == WARNING:
            outcome = WARN
        else:
            outcome = PASS
        threshold = rule.threshold if rule is not None else None
        results.append(CheckResult(check.name, outcome, _measured(check), threshold, check.message))
    return results
