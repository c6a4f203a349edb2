"""Notification activities: webhook, Slack, PagerDuty Events v2, dashboard.

Destination URLs and routing keys can be secrets (a Slack webhook URL is a
credential), so they are read from the environment when the policy says so and
never appear in logs, error messages or the payload itself.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch.models import Notification, NotificationResult
from zerotouch.policy import Channel

# httpx logs every request line, URL included, at INFO: a Slack webhook URL is a credential.
logging.getLogger("httpx").setLevel(logging.WARNING)

PAGERDUTY_SEVERITY = {"P0": "critical", "P1": "critical", "P2": "error", "P3": "warning", "P4": "info"}
TIMEOUT_SECONDS = 10.0


def _reject(message: str, kind: str = errors.NOTIFICATION_REJECTED) -> ApplicationError:
    return errors.fail(message, kind)


def _secret(variable: str | None, what: str, channel: str) -> str | None:
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise _reject(f"channel {channel!r}: {what} variable {variable} is not set", errors.MISSING_SECRET)
    return value


def _title(note: Notification) -> str:
    severity = f"[{note.severity}] " if note.severity else ""
    state = "RESOLVED: " if note.event == "resolve" else ""
    return f"{severity}{state}{note.summary}"


def _body(note: Notification, destination: Channel) -> dict[str, Any]:
    if destination.type == "slack":
        text = _title(note) + (f"\n{note.text}" if note.text else "")
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]}
    if destination.type == "pagerduty":
        routing_key = _secret(destination.routing_key_env, "routing key", note.channel)
        if not routing_key:
            raise _reject(f"channel {note.channel!r}: a pagerduty channel needs routing_key_env", errors.MISSING_SECRET)
        body: dict[str, Any] = {"routing_key": routing_key, "event_action": note.event, "dedup_key": note.incident_id}
        if note.event == "trigger":
            body["payload"] = {
                "summary": _title(note)[:1024],
                "severity": PAGERDUTY_SEVERITY.get(note.severity or "", "error"),
                "source": "zerotouch",
                "custom_details": {"incident_id": note.incident_id, "text": note.text},
            }
        return body
    # webhook: the notification itself, minus the destination (its URL may be a secret)
    return note.model_dump(mode="json", exclude={"destination"})


class NotifyActivities:
    """Sends notifications over HTTP (async, on the worker's event loop)."""

    def __init__(self, *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http

    @activity.defn(name=names.SEND_NOTIFICATION)
    async def send_notification(self, note: Notification) -> NotificationResult:
        """Deliver one notification; 5xx and network errors retry, other 4xx do not."""
        destination = note.destination
        if destination is None:
            if note.channel != "dashboard":
                raise _reject(f"channel {note.channel!r} has no destination; define it under channels",
                              errors.UNKNOWN_CHANNEL)
            destination = Channel(type="dashboard")
        if destination.type == "dashboard":
            return NotificationResult(delivered=True, detail="recorded on the dashboard")
        url = destination.url or _secret(destination.url_env, "URL", note.channel)
        if not url:
            raise _reject(f"channel {note.channel!r} has no URL", errors.UNKNOWN_CHANNEL)
        body = _body(note, destination)
        try:
            if self._http is not None:
                response = await self._http.post(url, json=body, timeout=TIMEOUT_SECONDS)
            else:
                async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as http:
                    response = await http.post(url, json=body)
        except httpx.HTTPError as error:
            # Only the class name: httpx messages can contain the URL.
            raise errors.fail(f"{destination.type} channel {note.channel!r} unreachable: "
                              f"{type(error).__name__}", errors.NOTIFICATION_UNAVAILABLE) from None
        where = f"{destination.type} channel {note.channel!r}"
        if response.status_code == 429 or response.status_code >= 500:
            raise errors.fail(f"{where} answered HTTP {response.status_code}; will retry",
                              errors.NOTIFICATION_UNAVAILABLE)
        if not 200 <= response.status_code < 300:
            raise _reject(f"{where} refused the notification with HTTP {response.status_code}: "
                          f"{response.text[:200]}")
        activity.logger.info("notification %s for %s delivered to %s", note.event, note.incident_id, where)
        return NotificationResult(delivered=True, detail=f"delivered to {where} (HTTP {response.status_code})")
