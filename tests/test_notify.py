"""Notifications: verified delivery, bounded retries, the Teams Workflows envelope, and logs
that never show the webhook's credential (its path and `sig=` query)."""

from __future__ import annotations

import socket

import pytest

from company_activity.pipeline import notify
from company_activity.pipeline.notify import RunMessage
from tests.webhook_server import webhook_server

SECRET_PATH = "/workflows/8f1c2d3e4b5a/triggers/manual/paths/invoke"
SECRET_SIG = "sig=Zx9-SIGNATURE-secret_42"

MESSAGE = RunMessage(
    pipeline="pl-company-activity-daily",
    run_id="run-n",
    status="succeeded",
    start_date="2025-05-05",
    end_date="2025-05-05",
    warnings=["2025-05-05 usage_volume: 8 usage rows vs a trailing 4-day average of 35.0"],
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_webhook_is_logged_by_scheme_and_host_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}{SECRET_PATH}?api-version=2016-06-01&{SECRET_SIG}"
    waits: list[float] = []
    caplog.set_level("INFO")
    assert notify.send(MESSAGE, url, attempts=3, sleep=waits.append) is False
    assert len(waits) == 2  # three attempts, bounded
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "NOT delivered to http://127.0.0.1 after 3 attempt(s)" in text
    assert "ConnectionError" in text
    for secret in (SECRET_PATH, "8f1c2d3e4b5a", "SIGNATURE", "sig=Zx9", "invoke"):
        assert secret not in text, secret


@pytest.mark.parametrize(
    ("status", "body", "delivered"),
    [
        (202, "", True),
        (200, "1", True),
        (
            200,
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned "
            "HTTP error 403 with ContextId tcid=0",
            False,
        ),
        (400, "Bad payload", False),
    ],
)
def test_delivered_only_on_2xx_without_a_known_failure_answer(
    status: int, body: str, delivered: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with webhook_server(status, body) as hook:
        url = hook.url.replace("/hook", SECRET_PATH)
        assert notify.send(MESSAGE, url, attempts=2, sleep=lambda s: None) is delivered
    assert len(hook.received) == (1 if delivered or status == 400 else 2)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET_PATH not in text and "webhook-signature-secret" not in text
    if not delivered:
        assert f"HTTP {status}" in text


def test_the_payload_is_a_teams_workflows_message_with_plain_fields() -> None:
    payload = MESSAGE.payload()
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == (
        "pl-company-activity-daily SUCCEEDED WITH 1 WARNING(S) for 2025-05-05"
    )
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Warning"].startswith("2025-05-05 usage_volume")
    # the plain fields a Logic App reads
    assert payload["status"] == "succeeded" and payload["run_id"] == "run-n"
    assert payload["warnings"] == MESSAGE.warnings
