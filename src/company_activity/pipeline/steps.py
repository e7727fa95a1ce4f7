"""The pipeline's steps, wired to the package's functions for one run.

Each step takes the date and returns a StepOutcome; every one is idempotent, so the runner may
retry it or a later run may repeat it. The loads and validate return the results of their
data-quality checks (model/checks.py), which the runner stores and gates the date on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from company_activity.errors import DataError
from company_activity.ingest import rawzone
from company_activity.ingest.fetch import PageSource, fetch_day
from company_activity.model import merge as model
from company_activity.model.checks import (
    CRM,
    USAGE,
    declared_checks,
    run_stage_checks,
    usage_drop_rule_check,
    validation_results,
)
from company_activity.model.validation import (
    CheckFn,
    ValidationResult,
    validate,
    validate_days,
)
from company_activity.pipeline import names as steps
from company_activity.pipeline.results import RangeStepFn, StepFn, StepOutcome
from company_activity.settings import Settings
from company_activity.staging import CrmFormat, load_crm, load_usage
from company_activity.staging.audit import LoadResult
from company_activity.storage.base import BlobStore
from company_activity.warehouse.base import Warehouse


@dataclass
class StepContext:
    """What the steps of one run share."""

    wh: Warehouse
    store: BlobStore
    settings: Settings
    source: PageSource
    run_id: str
    clock: Callable[[], datetime]
    # Validations computed ahead for a backfill chunk (prepare_validation); each is used once.
    validations: dict[date, ValidationResult] = field(default_factory=dict)


def _checked(ctx: StepContext, day: date, stage: str, result: LoadResult) -> StepOutcome:
    """A load's outcome with the checks of its stage (CRM or usage)."""
    return StepOutcome(
        rows=result.lines_staged,
        details={
            "read": result.lines_read,
            "rejected": result.lines_rejected,
            "bytes": result.bytes_read,
        },
        checks=tuple(run_stage_checks(ctx.wh, day, stage, declared_checks(ctx.settings))),
    )


def _usage_drop_check(settings: Settings) -> CheckFn:
    return usage_drop_rule_check(declared_checks(settings))


def build_steps(ctx: StepContext) -> dict[str, StepFn]:
    """The step functions by name, in pipeline order (notify is the runner's own)."""
    settings = ctx.settings
    rules = declared_checks(settings)
    drop_check = usage_drop_rule_check(rules)
    crm_format = CrmFormat.from_settings(settings)  # parsed once a run, not once a date

    def check_crm_file(day: date) -> StepOutcome:
        container, prefix = rawzone.crm_location(settings.crm_blob_path)
        path = prefix + rawzone.crm_file_name(day)
        if not ctx.store.exists(container, path):
            expected = ctx.store.url(container, path)
            raise DataError(
                f"the CRM snapshot for {day} is missing: expected {expected}. "
                "Upload the day's CRM export there and re-run the date."
            )
        return StepOutcome(details={"file": f"{container}/{path}"})

    def load_crm_step(day: date) -> StepOutcome:
        return _checked(
            ctx,
            day,
            CRM,
            load_crm(
                ctx.wh,
                ctx.store,
                day,
                crm_blob_path=settings.crm_blob_path,
                run_id=ctx.run_id,
                clock=ctx.clock,
                fmt=crm_format,
            ),
        )

    def merge_dimension(day: date) -> StepOutcome:
        return StepOutcome(rows=model.merge_dimension(ctx.wh, day, ctx.run_id, ctx.clock()))

    def fetch_usage(day: date) -> StepOutcome:
        result = fetch_day(
            ctx.source,
            ctx.store,
            settings.blob_container,
            day,
            run_id=ctx.run_id,
            fetched_at=ctx.clock().isoformat(),
        )
        return StepOutcome(
            rows=result.records,
            details={"pages": result.pages, "retries": result.retries, "bytes": result.bytes},
        )

    def load_usage_step(day: date) -> StepOutcome:
        return _checked(
            ctx,
            day,
            USAGE,
            load_usage(
                ctx.wh,
                ctx.store,
                day,
                container=settings.blob_container,
                run_id=ctx.run_id,
                clock=ctx.clock,
            ),
        )

    def merge_analytics(day: date) -> StepOutcome:
        return StepOutcome(rows=model.merge_analytics(ctx.wh, day, day, ctx.run_id, ctx.clock()))

    def validate_step(day: date) -> StepOutcome:
        result = ctx.validations.pop(day, None) or validate(ctx.wh, day, extra_checks=(drop_check,))
        flag_check = result.check("flags").details
        flags = {k: v for k, v in flag_check.get("flags", {}).items() if v}
        if flag_check.get("churn_risk"):
            flags["churn_risk"] = flag_check["churn_risk"]
        return StepOutcome(
            details={"warnings": [c.line() for c in result.warnings], "flags": flags},
            checks=tuple(validation_results(result, rules)),
        )

    return {
        steps.CHECK_CRM_FILE: check_crm_file,
        steps.LOAD_CRM: load_crm_step,
        steps.MERGE_DIMENSION: merge_dimension,
        steps.FETCH_USAGE: fetch_usage,
        steps.LOAD_USAGE: load_usage_step,
        steps.MERGE_ANALYTICS: merge_analytics,
        steps.VALIDATE: validate_step,
    }


def build_range_steps(ctx: StepContext) -> dict[str, RangeStepFn]:
    """The merges over a date range, for the runner's backfill path (pipeline.RANGE_STEPS)."""

    def merge_dimension(start: date, end: date) -> StepOutcome:
        rows = model.merge_dimension_range(ctx.wh, start, end, ctx.run_id, ctx.clock())
        return StepOutcome(rows=rows)

    def merge_analytics(start: date, end: date) -> StepOutcome:
        return StepOutcome(rows=model.merge_analytics(ctx.wh, start, end, ctx.run_id, ctx.clock()))

    return {steps.MERGE_DIMENSION: merge_dimension, steps.MERGE_ANALYTICS: merge_analytics}


def prepare_validation(ctx: StepContext) -> Callable[[Sequence[date]], None]:
    """For the runner's backfill path: validate a chunk's dates together, after its merges,
    for the validate steps that follow (the checks run set-based over the chunk's range)."""
    drop_check = _usage_drop_check(ctx.settings)

    def prepare(days: Sequence[date]) -> None:
        ctx.validations.clear()
        ctx.validations.update(validate_days(ctx.wh, days, extra_checks=(drop_check,)))

    return prepare
