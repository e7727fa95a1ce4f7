"""Run notifications: a JSON POST that a Teams Workflows webhook or a Logic App accepts.

Without a webhook URL the message goes to the log. A failing webhook is logged and never
changes the pipeline's own outcome.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from company_activity.errors import PipelineError
from company_activity.http import DEFAULT_DEADLINE_SECONDS, call, new_session
from company_activity.redact import redact

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = (5.0, 15.0)  # connect, read seconds

RUN_LOG_QUERY = (
    "SELECT s.run_date, s.step_name, s.status, s.attempts, s.rows_affected, s.error_text "
    "FROM ops.step_runs AS s WHERE s.run_id = '{run_id}' ORDER BY s.run_date, s.started_at;"
)


@dataclass(frozen=True)
class RunMessage:
    """What a notification says about one pipeline run (or one date of it)."""

    pipeline: str
    run_id: str
    status: str  # succeeded | failed
    start_date: str
    end_date: str
    failing_step: str | None = None
    failing_date: str | None = None
    error: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def run_log_query(self) -> str:
        return RUN_LOG_QUERY.format(run_id=self.run_id)

    def title(self) -> str:
        span = (
            self.start_date
            if self.start_date == self.end_date
            else f"{self.start_date}..{self.end_date}"
        )
        return f"{self.pipeline} {self.status.upper()} for {span}"

    def payload(self) -> dict[str, Any]:
        """Plain fields for a Logic App, plus an Adaptive Card for Teams Workflows."""
        body = asdict(self)
        body["error"] = redact(self.error) if self.error else None
        body["run_log_query"] = self.run_log_query
        facts = [
            {"title": "Run id", "value": self.run_id},
            {"title": "Status", "value": self.status},
            {"title": "Dates", "value": f"{self.start_date} .. {self.end_date}"},
        ]
        if self.failing_step:
            facts.append(
                {"title": "Failing step", "value": f"{self.failing_step} ({self.failing_date})"}
            )
        if body["error"]:
            facts.append({"title": "Error", "value": body["error"]})
        facts.extend({"title": k, "value": str(v)} for k, v in self.counts.items())
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": self.title()},
                {"type": "FactSet", "facts": facts},
                {
                    "type": "TextBlock",
                    "wrap": True,
                    "fontType": "Monospace",
                    "text": self.run_log_query,
                },
            ],
        }
        body["type"] = "message"
        body["attachments"] = [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ]
        return body


def send(
    message: RunMessage,
    webhook_url: str | None,
    session: requests.Session | None = None,
    deadline: float = DEFAULT_DEADLINE_SECONDS,
) -> bool:
    """Deliver the message; return True when a webhook accepted it. Never raises.

    The POST goes through company_activity.http: it ends within `deadline` seconds
    (HTTP_DEADLINE_SECONDS) however slowly the webhook answers, and is never redirected to
    another host.
    """
    summary = redact(
        f"{message.title()}: {message.error or 'ok'} (run log: {message.run_log_query})"
    )
    if not webhook_url:
        (log.error if message.status == "failed" else log.info)("notification: %s", summary)
        return False
    http = session or new_session(pool_size=1)
    try:
        answer = call(
            http,
            "POST",
            webhook_url,
            data=json.dumps(message.payload(), default=str),
            headers={"Content-Type": "application/json"},
            timeout=WEBHOOK_TIMEOUT,
            deadline=deadline,
        )
        if answer.status >= 300:
            log.warning(
                "notification webhook answered HTTP %s; the run's own status stands: %s",
                answer.status,
                summary,
            )
            return False
    except PipelineError as exc:
        log.warning(
            "notification webhook failed (%s); the run's own status stands: %s",
            redact(exc),
            summary,
        )
        return False
    log.info("notification sent: %s", message.title())
    return True
