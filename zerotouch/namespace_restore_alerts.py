"""A namespace restore that was refused or failed, as an alert: it opens an incident like any other failure."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for

RESTORE_FAILED_ALERT: Final = "NamespaceRestoreFailed"
RESTORE_LABEL: Final = "restore_namespace"
ANNOTATION_LIMIT = 2000


def restore_event(into: str, *, summary: str, evidence: str, at: datetime) -> AlertEvent:
    labels = {"alertname": RESTORE_FAILED_ALERT, "severity": "warning", RESTORE_LABEL: into, "namespace": into}
    return AlertEvent(
        fingerprint=fingerprint_of(labels), status="firing", labels=labels,
        annotations={"summary": summary[:ANNOTATION_LIMIT], "description": evidence[:ANNOTATION_LIMIT]},
        starts_at=at, received_at=at, source="zerotouch-recovery",
    )


def incident_for(event: AlertEvent, group_by: list[str], cluster: str = "") -> str:
    return incident_id_for(event, [*group_by, RESTORE_LABEL], cluster)
