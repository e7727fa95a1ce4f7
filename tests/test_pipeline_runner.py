"""The runner's mechanics with test steps: retries, run log, notifications, resumability.

The steps here are small test functions (the real steps are tested end to end in
test_pipeline_e2e.py); the warehouse is a real DuckDB file and the webhook a real local server.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from company_activity.dates import date_range
from company_activity.errors import DataError, TransientError
from company_activity.pipeline import names as steps
from company_activity.pipeline import notify
from company_activity.pipeline.runner import PipelineRunner, StepOutcome
from company_activity.redact import register_secret
from company_activity.warehouse.duckdb_engine import DuckDBWarehouse
from tests.webhook_server import webhook_server

DAYS = date_range(date(2025, 3, 1), date(2025, 3, 3))


_TICKS = itertools.count()


def _clock() -> datetime:
    """A clock shared by every runner in this module, always moving forward."""
    return datetime(2025, 3, 10) + timedelta(seconds=next(_TICKS))


class Steps(dict[str, Callable[[date], StepOutcome]]):
    """Test steps that count their calls and can fail on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, date]] = []
        self.failures: dict[tuple[str, date], list[Exception]] = {}
        for name in steps.STEP_NAMES:
            if name != steps.NOTIFY:
                self[name] = self._make(name)

    def _make(self, name: str) -> Callable[[date], StepOutcome]:
        def step(day: date) -> StepOutcome:
            self.calls.append((name, day))
            pending = self.failures.get((name, day))
            if pending:
                raise pending.pop(0)
            return StepOutcome(rows=10, details={"rejected": 1})

        return step


def _runner(wh: DuckDBWarehouse, run_steps: Steps, url: str | None, run_id: str) -> PipelineRunner:
    return PipelineRunner(
        wh,
        run_id,
        run_steps,
        lambda m: notify.send(m, url, sleep=lambda s: None),
        _clock,
        max_attempts=3,
        sleep=lambda s: None,
    )


def _step_log(wh: DuckDBWarehouse, run_id: str) -> list[tuple[object, ...]]:
    return wh.query(
        "SELECT run_date, step_name, status, attempts FROM ops.step_runs WHERE run_id = @r "
        "ORDER BY run_date, started_at",
        {"r": run_id},
    )


def test_clean_run_logs_every_step_and_notifies_once(warehouse: DuckDBWarehouse) -> None:
    run_steps = Steps()
    with webhook_server() as hook:
        result = _runner(warehouse, run_steps, hook.url, "run-1").run(DAYS, "run test")
    assert result.ok
    assert [c[0] for c in run_steps.calls[:7]] == [s for s in steps.STEP_NAMES if s != steps.NOTIFY]
    log = _step_log(warehouse, "run-1")
    assert len(log) == 3 * 7 + 1  # notify once, for the last date
    assert all(status == "succeeded" and attempts == 1 for _, _, status, attempts in log)
    assert warehouse.query("SELECT status FROM ops.pipeline_runs WHERE run_id = 'run-1'") == [
        ("succeeded",)
    ]
    assert len(hook.received) == 1
    message = hook.received[0]
    assert message["status"] == "succeeded" and message["run_id"] == "run-1"
    assert message["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "ops.step_runs" in message["run_log_query"]


def test_transient_errors_are_retried_and_counted(warehouse: DuckDBWarehouse) -> None:
    run_steps = Steps()
    run_steps.failures[(steps.FETCH_USAGE, DAYS[1])] = [
        TransientError("HTTP 503"),
        TransientError("HTTP 429"),
    ]
    result = _runner(warehouse, run_steps, None, "run-2").run(DAYS, "run test")
    assert result.ok
    attempts = {(d, s): a for d, s, _, a in _step_log(warehouse, "run-2") if s == steps.FETCH_USAGE}
    assert attempts[(DAYS[1], steps.FETCH_USAGE)] == 3
    assert attempts[(DAYS[0], steps.FETCH_USAGE)] == 1


def test_terminal_error_stops_at_once_and_notifies(warehouse: DuckDBWarehouse) -> None:
    register_secret("pw-in-error-9876")
    run_steps = Steps()
    run_steps.failures[(steps.LOAD_USAGE, DAYS[1])] = [DataError("bad partition; pw-in-error-9876")]
    with webhook_server() as hook:
        result = _runner(warehouse, run_steps, hook.url, "run-3").run(DAYS, "run test")
    assert not result.ok
    assert result.failed is not None and result.failed.failing_step == steps.LOAD_USAGE
    assert (steps.MERGE_ANALYTICS, DAYS[1]) not in run_steps.calls
    assert all(day != DAYS[2] for _, day in run_steps.calls)
    failed = [r for r in _step_log(warehouse, "run-3") if r[2] == "failed"]
    assert failed == [(DAYS[1], steps.LOAD_USAGE, "failed", 1)]
    error_text = warehouse.scalar("SELECT error_text FROM ops.pipeline_runs WHERE run_id = 'run-3'")
    assert "load_usage" in error_text and "pw-in-error-9876" not in error_text
    assert [m["failing_step"] for m in hook.received] == [steps.LOAD_USAGE]
    assert "pw-in-error-9876" not in str(hook.received)


def test_exhausted_retries_fail_the_step(warehouse: DuckDBWarehouse) -> None:
    run_steps = Steps()
    run_steps.failures[(steps.FETCH_USAGE, DAYS[0])] = [TransientError("503")] * 5
    result = _runner(warehouse, run_steps, None, "run-4").run(DAYS, "run test")
    assert result.failed is not None
    assert (DAYS[0], steps.FETCH_USAGE, "failed", 3) in _step_log(warehouse, "run-4")


def test_rerun_skips_completed_dates_unless_forced(warehouse: DuckDBWarehouse) -> None:
    run_steps = Steps()
    run_steps.failures[(steps.VALIDATE, DAYS[2])] = [DataError("grid incomplete")]
    assert not _runner(warehouse, run_steps, None, "run-5").run(DAYS, "run").ok
    again = Steps()
    result = _runner(warehouse, again, None, "run-6").run(DAYS, "run")
    assert result.ok
    assert [r.status for r in result.dates] == ["skipped", "skipped", "succeeded"]
    assert {day for _, day in again.calls} == {DAYS[2]}
    forced = Steps()
    _runner(warehouse, forced, None, "run-7").run(DAYS, "run --force", force=True)
    assert {day for _, day in forced.calls} == set(DAYS)


def test_a_failed_forced_rerun_makes_the_date_pending_again(warehouse: DuckDBWarehouse) -> None:
    _runner(warehouse, Steps(), None, "run-8").run(DAYS[:1], "run")
    broken = Steps()
    broken.failures[(steps.LOAD_CRM, DAYS[0])] = [DataError("bad csv")]
    _runner(warehouse, broken, None, "run-9").run(DAYS[:1], "run --force", force=True)
    retry = Steps()
    assert (
        _runner(warehouse, retry, None, "run-10").run(DAYS[:1], "run").dates[0].status
        == "succeeded"
    )


@pytest.mark.parametrize(
    ("status", "body", "attempts"),
    [
        (500, "", 3),  # retried, a bounded number of times
        (404, "", 1),  # a wrong URL: retrying cannot help
        (
            200,
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned "
            "HTTP error 403",
            3,
        ),  # the retired Teams connector's 200
    ],
    ids=["500", "404", "200-failure-answer"],
)
def test_a_failing_webhook_never_hides_the_run_status(
    warehouse: DuckDBWarehouse,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: str,
    attempts: int,
) -> None:
    run_id = f"run-w{status}"
    with webhook_server(status, body) as hook:
        result = _runner(warehouse, Steps(), hook.url, run_id).run(DAYS[:1], "run")
    assert result.ok and len(hook.received) == attempts
    assert warehouse.scalar(
        "SELECT status FROM ops.pipeline_runs WHERE run_id = @r", {"r": run_id}
    ) == ("succeeded")
    notify_row = warehouse.query(
        "SELECT status, details FROM ops.step_runs WHERE run_id = @r AND step_name = 'notify'",
        {"r": run_id},
    )
    assert notify_row[0][0] == "failed" and '"notification": "undelivered"' in notify_row[0][1]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("NOT delivered" in w and f"HTTP {status}" in w for w in warnings), warnings
    assert not any("sig=" in w or "/hook" in w for w in warnings)


def test_an_unreachable_webhook_never_hides_the_run_status(warehouse: DuckDBWarehouse) -> None:
    result = _runner(warehouse, Steps(), "http://127.0.0.1:9/hook", "run-u").run(DAYS[:1], "run")
    assert result.ok


def test_a_rolled_back_date_is_pending_again(warehouse: DuckDBWarehouse) -> None:
    _runner(warehouse, Steps(), None, "run-rb1").run(DAYS[:2], "run")
    warehouse.execute(
        "INSERT INTO ops.rollbacks (run_id, activity_date, analytics_rows_deleted, "
        "staging_rows_deleted, rolled_back_at) VALUES ('rb', CAST(@d AS DATE), 1, 0, "
        "CAST(@at_ts AS DATETIME2(6)))",
        {"d": DAYS[1], "at_ts": _clock()},
    )
    again = Steps()
    result = _runner(warehouse, again, None, "run-rb2").run(DAYS[:2], "run")
    assert [d.status for d in result.dates] == ["skipped", "succeeded"]


def test_an_interrupted_run_closes_its_step_and_notifies(warehouse: DuckDBWarehouse) -> None:
    run_steps = Steps()
    run_steps.failures[(steps.LOAD_USAGE, DAYS[1])] = [KeyboardInterrupt()]  # type: ignore[list-item]
    with webhook_server() as hook, pytest.raises(KeyboardInterrupt):
        _runner(warehouse, run_steps, hook.url, "run-int").run(DAYS, "run")
    assert (DAYS[1], steps.LOAD_USAGE, "interrupted", 0) in _step_log(warehouse, "run-int")
    assert not [r for r in _step_log(warehouse, "run-int") if r[2] == "running"]
    assert warehouse.scalar("SELECT status FROM ops.pipeline_runs WHERE run_id = 'run-int'") == (
        "interrupted"
    )
    assert [(m["status"], m["failing_step"]) for m in hook.received] == [
        ("interrupted", steps.LOAD_USAGE)
    ]
    assert "interrupted" in hook.received[0]["error"]


def test_a_bug_in_a_step_is_one_log_line_without_traceback(
    warehouse: DuckDBWarehouse, caplog: pytest.LogCaptureFixture
) -> None:
    run_steps = Steps()
    run_steps.failures[(steps.VALIDATE, DAYS[0])] = [ZeroDivisionError("division by zero")]
    caplog.set_level("INFO")
    result = _runner(warehouse, run_steps, None, "run-bug").run(DAYS[:1], "run")
    assert result.failed is not None and "failed unexpectedly" in (result.failed.error or "")
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
