"""Run notifications: a JSON POST that a Teams Workflows webhook or a Logic App accepts.

The envelope is what the Teams Workflows template "Post to a channel when a webhook request is
received" reads: a `message` with one Adaptive Card attachment (Microsoft's reference:
https://learn.microsoft.com/en-us/connectors/teams/?tabs=text1%2Cdotnet#microsoft-teams-webhook);
the plain fields beside it serve a Logic App. Without a webhook URL the message goes to the log.

A message counts as delivered only when the webhook answers 2xx with no known failure body (the
retired Office 365 connector answers HTTP 200 `Webhook message delivery failed with error: ...`).
An undelivered message is retried a bounded number of times, then logged as a warning with the
reason; it never changes the pipeline's own outcome. Logs name only the webhook's scheme and
host: Teams and Logic App URLs carry their credential in the path and the `sig=` query.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from company_activity.errors import PipelineError, TransientError
from company_activity.http import DEFAULT_DEADLINE_SECONDS, call, new_session
from company_activity.redact import redact

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = (5.0, 15.0)  # connect, read seconds
WEBHOOK_RETRY_WAIT = 2.0  # seconds before the second attempt; doubled for each further one
# Bodies that mean "not delivered" even with HTTP 200 (the retired Office 365 connector's).
KNOWN_FAILURE_ANSWERS = (
    "Webhook message delivery failed",
    "Microsoft Teams endpoint returned HTTP error",
)

RUN_LOG_QUERY = (
    "SELECT s.run_date, s.step_name, s.status, s.attempts, s.rows_affected, s.error_text "
    "FROM ops.step_runs AS s WHERE s.run_id = '{run_id}' ORDER BY s.run_date, s.started_at;"
)


@dataclass(frozen=True)
class RunMessage:
    """What a notification says about one pipeline run (or one date of it)."""

    pipeline: str
    run_id: str
    status: str  # succeeded | failed | interrupted
    start_date: str
    end_date: str
    failing_step: str | None = None
    failing_date: str | None = None
    error: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # "date check: message", one per warning

    @property
    def run_log_query(self) -> str:
        return RUN_LOG_QUERY.format(run_id=self.run_id)

    def title(self) -> str:
        span = (
            self.start_date
            if self.start_date == self.end_date
            else f"{self.start_date}..{self.end_date}"
        )
        outcome = self.status.upper()
        if self.warnings:
            outcome += f" WITH {len(self.warnings)} WARNING(S)"
        return f"{self.pipeline} {outcome} for {span}"

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
        facts.extend({"title": "Warning", "value": redact(w)} for w in self.warnings)
        body["warnings"] = [redact(w) for w in self.warnings]
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


def webhook_host(url: str) -> str:
    """What logs may say about a webhook: its scheme and host, never path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def _reason(exc: BaseException, url: str) -> str:
    """An exception's text with the webhook's path and query removed (they are credentials)."""
    parts = urlsplit(url)
    text = redact(exc)
    for secret in (url, parts.path + ("?" + parts.query if parts.query else ""), parts.query):
        if secret:
            text = text.replace(secret, "...")
    if len(parts.path) > 1:
        text = text.replace(parts.path, "...")
    return re.sub(r"sig=[^&\s'\"]+", "sig=***", text)


def _answer_failure(status: int, body: bytes) -> str | None:
    """Why an answer means "not delivered", or None when it was delivered."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    text = body[:2000].decode("utf-8", errors="replace")
    for marker in KNOWN_FAILURE_ANSWERS:
        if marker.lower() in text.lower():
            # The body names the failure, never the URL; keep its first line, clipped.
            first = redact(text.strip().splitlines()[0])[:200]
            return f"HTTP {status} with a failure answer: {first}"
    return None


def send(
    message: RunMessage,
    webhook_url: str | None,
    session: requests.Session | None = None,
    deadline: float = DEFAULT_DEADLINE_SECONDS,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Deliver the message; True only when a webhook accepted it. Never raises.

    Each POST goes through company_activity.http: it ends within `deadline` seconds
    (HTTP_DEADLINE_SECONDS) however slowly the webhook answers, and is never redirected to
    another host. attempts: tries before giving up (a 4xx other than 408/429 is not retried).
    """
    summary = redact(
        f"{message.title()}: {message.error or 'ok'} (run log: {message.run_log_query})"
    )
    if not webhook_url:
        (log.error if message.status != "succeeded" else log.info)("notification: %s", summary)
        return False
    host = webhook_host(webhook_url)
    http = session or new_session(pool_size=1)
    reason = "not tried"
    for attempt in range(1, max(1, attempts) + 1):
        retry = True
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
            failure = _answer_failure(answer.status, answer.body)
            if failure is None:
                log.info("notification delivered to %s: %s", host, message.title())
                return True
            reason = failure
            retry = not (400 <= answer.status < 500 and answer.status not in (408, 429))
        except PipelineError as exc:
            reason = _reason(exc, webhook_url)
            retry = isinstance(exc, TransientError)
        if attempt < attempts and retry:
            log.info("notification to %s not delivered (%s); retrying", host, reason)
            sleep(WEBHOOK_RETRY_WAIT * 2 ** (attempt - 1))
        else:
            break
    log.warning(
        "notification NOT delivered to %s after %s attempt(s): %s; the run's own status stands: %s",
        host,
        attempt,
        reason,
        summary,
    )
    return False
