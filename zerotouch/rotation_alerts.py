"""A rotation that failed, rolled back or could not revoke, as an alert: it opens an incident.

The same path as a failed backup: the workflow builds the alert (pure) and hands it to the
`forward_alerts` activity, so the incident is triaged, escalated and recorded like any other.
One incident per rotation: a repeated failure joins the open one; the next good rotation resolves it.
"""

from __future__ import annotations

from datetime import datetime

from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for
from zerotouch.rotations import ROTATION_FAILED_ALERT, Rotation

ROTATION_LABEL = "rotation"
ANNOTATION_LIMIT = 2000


def rotation_event(name: str, rotation: Rotation, *, summary: str, evidence: str, at: datetime,
                   firing: bool = True) -> AlertEvent:
    labels = {"alertname": ROTATION_FAILED_ALERT, "severity": "warning", ROTATION_LABEL: name,
              "namespace": rotation.secret.namespace, "secret": rotation.secret.name, "service": name}
    return AlertEvent(
        fingerprint=fingerprint_of(labels), status="firing" if firing else "resolved", labels=labels,
        annotations={"summary": summary[:ANNOTATION_LIMIT], "description": evidence[:ANNOTATION_LIMIT]},
        starts_at=at, ends_at=None if firing else at, received_at=at, source="zerotouch-rotations",
    )


def incident_for(event: AlertEvent, group_by: list[str], cluster: str = "") -> str:
    return incident_id_for(event, [*group_by, ROTATION_LABEL], cluster)
