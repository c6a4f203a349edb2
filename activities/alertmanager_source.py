"""Alertmanager's API v2, read-only: which of an incident's alerts are still active at the source.

The URL is checked (`zerotouch.alertmanager_source.source_url`) before any request, requests
never follow redirects, and the answer is read up to a bound: the URL may have come from a
webhook body.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from zerotouch import activity_names as names
from zerotouch.alertmanager_source import SourceAlert, SourceAnswer, SourceCheck
from zerotouch.alerts import fingerprint_of

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# Matchers only narrow the answer (fingerprints decide), so a few short ones are enough.
MAX_MATCHERS = 8
MAX_MATCHER_VALUE = 256

UNREACHABLE = "AlertmanagerUnreachable"  # retryable: connection refused, timeout, 5xx
REJECTED = "AlertmanagerRejected"  # not retryable: a 3xx/4xx or an answer that is not the API's


def matcher(name: str, value: str) -> str:
    """An equality matcher as Alertmanager parses it: the value quoted, ``\\``, ``"`` and newline escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'


def query_of(check: SourceCheck) -> tuple[tuple[str, str | int | float | bool | None], ...]:
    """Active alerts only: resolved, silenced and inhibited ones are not listed."""
    params = [("active", "true"), ("silenced", "false"), ("inhibited", "false"), ("unprocessed", "true")]
    usable = sorted((n, v) for n, v in check.matchers.items() if len(v) <= MAX_MATCHER_VALUE)
    usable.sort(key=lambda item: item[0] != "alertname")  # the most selective first
    return (*params, *(("filter", matcher(n, v)) for n, v in usable[:MAX_MATCHERS]))


def _unreachable(message: str) -> ApplicationError:
    return ApplicationError(message, type=UNREACHABLE)


def _rejected(message: str) -> ApplicationError:
    return ApplicationError(message, type=REJECTED, non_retryable=True)


def _is_active(alert: dict[str, Any]) -> bool:
    status = alert.get("status")
    if not isinstance(status, dict):
        return True
    # Silenced or inhibited on purpose (a person, or a rule, decided it needs no one): not active.
    return status.get("state") != "suppressed" and not status.get("silencedBy") and not status.get("inhibitedBy")


def answer_of(alerts: Any, check: SourceCheck) -> SourceAnswer:
    """The incident's fingerprints among the listed alerts (Alertmanager's, or ours for alerts sent without)."""
    if not isinstance(alerts, list):
        raise _rejected(f"{check.url}/api/v2/alerts did not answer a list of alerts: is it Alertmanager?")
    wanted, found = set(check.fingerprints), dict[str, SourceAlert]()
    for alert in alerts:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict) or not _is_active(alert):
            continue
        labels = {str(k): str(v) for k, v in alert["labels"].items()}
        for fingerprint in (str(alert.get("fingerprint", "")), fingerprint_of(labels)):
            if fingerprint in wanted and fingerprint not in found:
                found[fingerprint] = SourceAlert(fingerprint=fingerprint, alertname=labels.get("alertname", ""),
                                                 starts_at=_time(alert.get("startsAt")))
                break
    return SourceAnswer(active=list(found.values()), listed=len(alerts))


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


class AlertmanagerActivities:
    """Reads Alertmanager's API v2 over the worker's HTTP client (async, on its event loop)."""

    def __init__(self, *, http: httpx.AsyncClient) -> None:
        self._http = http

    @activity.defn(name=names.FIND_FIRING_ALERTS)
    async def find_firing_alerts(self, check: SourceCheck) -> SourceAnswer:
        """GET /api/v2/alerts?active=true&silenced=false&inhibited=false: which of the incident's alerts fire."""
        return answer_of(await self._get_alerts(check), check)

    async def _get_alerts(self, check: SourceCheck) -> Any:
        url = f"{check.url}/api/v2/alerts"
        try:
            async with self._http.stream("GET", url, params=query_of(check), follow_redirects=False,
                                         headers={"Accept": "application/json"},
                                         timeout=httpx.Timeout(TIMEOUT_SECONDS)) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    raise _unreachable(f"Alertmanager at {check.url} answered HTTP {response.status_code}")
                if response.status_code != 200:
                    raise _rejected(f"{url} answered HTTP {response.status_code}; is {check.url} Alertmanager? "
                                    "set alertmanager.url in the policy to the address the workers reach")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise _rejected(f"{url} answered more than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB")
        except httpx.HTTPError as error:
            raise _unreachable(f"could not reach Alertmanager at {check.url}: "
                               f"{type(error).__name__} {str(error)[:200]}".rstrip()) from None
        try:
            return json.loads(body)
        except ValueError:
            raise _rejected(f"{url} did not answer JSON: is {check.url} Alertmanager?") from None
