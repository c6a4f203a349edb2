"""A failed backup or verification as an alert: it opens an incident through the IncidentWorkflow path.

The workflow builds the alert (pure, deterministic) and hands it to the `forward_alerts` activity,
the same signal-with-start the relay uses, so the incident is triaged, escalated along its ladder
and recorded like any other. One incident per target and alert name: a repeated failure joins the
open incident, and the next successful verification resolves its alert.
"""

from __future__ import annotations

from datetime import datetime

from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for
from zerotouch.backups import FAILURE_ALERT, BackupTarget

BACKUP_FAILED_ALERT = "BackupFailed"
TARGET_LABEL = "backup_target"
ANNOTATION_LIMIT = 2000


def failure_event(target: BackupTarget, *, alertname: str, summary: str, evidence: str, at: datetime,
                  firing: bool = True, extra: dict[str, str] | None = None) -> AlertEvent:
    labels = {"alertname": alertname, "severity": "critical", TARGET_LABEL: target.name,
              "engine": target.engine, "service": target.name}
    return AlertEvent(
        fingerprint=fingerprint_of(labels), status="firing" if firing else "resolved", labels=labels,
        annotations={"summary": summary[:ANNOTATION_LIMIT], "description": evidence[:ANNOTATION_LIMIT],
                     **(extra or {})},
        starts_at=at, ends_at=None if firing else at, received_at=at, source="zerotouch-backups",
    )


def incident_for(event: AlertEvent, group_by: list[str], cluster: str = "") -> str:
    """The incident's ID: the policy's grouping plus the target, so each target has its own."""
    return incident_id_for(event, [*group_by, TARGET_LABEL], cluster)


ALERT_NAMES = (FAILURE_ALERT, BACKUP_FAILED_ALERT)
