"""`zerotouch fire`: send one alert to the relay exactly as Alertmanager would (payload v4)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any

import httpx

from zerotouch.alerts import fingerprint_of

RECEIVER = "zerotouch-fire"
# What Alertmanager sends as endsAt for an alert that is still firing.
ZERO_TIME = "0001-01-01T00:00:00Z"


class FireError(ValueError):
    """The relay could not be reached or refused the alert; the message says which and why."""


def build_payload(alertname: str, labels: dict[str, str], annotations: dict[str, str], resolved: bool,
                  *, now: datetime | None = None) -> dict[str, Any]:
    """A webhook body with one alert; ``labels`` may omit ``alertname`` (it is added)."""
    moment = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    all_labels = {**labels, "alertname": alertname}
    status = "resolved" if resolved else "firing"
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": RECEIVER,
        "groupLabels": {"alertname": alertname},
        "commonLabels": all_labels,
        "commonAnnotations": dict(annotations),
        "externalURL": "",
        "alerts": [
            {
                "status": status,
                "labels": all_labels,
                "annotations": dict(annotations),
                "startsAt": moment,
                "endsAt": moment if resolved else ZERO_TIME,
                "generatorURL": "",
                # The same labels give the same fingerprint, so a later --resolved finds its alert.
                "fingerprint": fingerprint_of(all_labels),
            }
        ],
    }


def _endpoint(relay_url: str) -> str:
    base = relay_url.rstrip("/")
    return base if base.endswith("/alertmanager") else f"{base}/alertmanager"


def fire_alert(relay_url: str, token: str | None, alertname: str, labels: dict[str, str],
               annotations: dict[str, str], resolved: bool, *, timeout: float = 15.0,
               verify: bool | str = True) -> dict[str, Any]:
    """POST one alert to the relay; returns its answer (``{"accepted": 1, "incidents": [...]}``).

    Raises `FireError` when the relay is unreachable or answers anything but 200.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = _endpoint(relay_url)
    # A string is a CA bundle, e.g. the relay's self-signed certificate.
    tls: bool | ssl.SSLContext = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    try:
        response = httpx.post(url, json=build_payload(alertname, labels, annotations, resolved),
                              headers=headers, timeout=timeout, verify=tls)
    except httpx.HTTPError as error:
        raise FireError(f"cannot reach the relay at {url}: {error}") from None
    if response.status_code != 200:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        detail = str(answer["detail"]) if isinstance(answer, dict) and "detail" in answer else response.text
        raise FireError(f"relay answered {response.status_code}: {detail[:500]}")
    result: dict[str, Any] = response.json()
    return result
