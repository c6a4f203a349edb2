"""Alertmanager v4 webhook bodies and the incident IDs the relay derives from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starters.relay.config import DEFAULT_GROUP_BY
from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for

# Alertmanager's route in the payloads these scenarios send (the relay groups by the policy's own labels).
GROUP_BY = ["alertname", "namespace", "deployment"]
RESTART_ALERT = "BenchRestart"  # matched by the bench runbook: a rolling restart
NOISE_ALERT = "BenchNoise"  # matched by no runbook: recorded and escalated, no action


def labels_for(alertname: str, namespace: str, deployment: str) -> dict[str, str]:
    return {"alertname": alertname, "namespace": namespace, "deployment": deployment, "severity": "warning"}


def webhook(labels: dict[str, str], status: str = "firing", starts_at: datetime | None = None) -> bytes:
    """One alert in one payload, as Alertmanager sends it when the route groups by the incident key."""
    started = (starts_at or datetime.now(UTC)).isoformat()
    alert: dict[str, Any] = {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} on {labels['namespace']}/{labels['deployment']}"},
        "startsAt": started,
        "endsAt": datetime.now(UTC).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.bench/graph",
        "fingerprint": fingerprint_of(labels),
    }
    body = {
        "version": "4",
        "groupKey": "{}:" + json.dumps({k: labels[k] for k in GROUP_BY}, sort_keys=True),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "zerotouch",
        "groupLabels": {k: labels[k] for k in GROUP_BY},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager.bench",
        "alerts": [alert],
    }
    return json.dumps(body).encode()


def incident_id(labels: dict[str, str]) -> str:
    """The incident the relay makes of these labels (the shipped policy's `group_by`, not Alertmanager's)."""
    event = AlertEvent(fingerprint=fingerprint_of(labels), status="firing", labels=labels,
                       starts_at=datetime.now(UTC))
    return incident_id_for(event, list(DEFAULT_GROUP_BY))
