"""A data-subject request near or past its legal deadline, or failing, as an alert: it opens an incident.

The same path as a failed backup or rotation (`forward_alerts`), so the incident climbs the
escalation ladder. Labels carry the request id and the subject's pseudonym, never the identity.
"""

from __future__ import annotations

from datetime import datetime

from zerotouch.alerts import AlertEvent, fingerprint_of, incident_id_for

REQUEST_LABEL = "dsr_request"
DUE_SOON_ALERT = "DataSubjectRequestDueSoon"
OVERDUE_ALERT = "DataSubjectRequestOverdue"
FAILED_ALERT = "DataSubjectRequestFailed"
_SEVERITY = {DUE_SOON_ALERT: "warning", OVERDUE_ALERT: "critical", FAILED_ALERT: "critical"}


def request_event(alertname: str, request_id: str, *, summary: str, at: datetime, firing: bool = True) -> AlertEvent:
    labels = {"alertname": alertname, "severity": _SEVERITY[alertname], REQUEST_LABEL: request_id,
              "service": "gdpr"}
    return AlertEvent(
        fingerprint=fingerprint_of(labels), status="firing" if firing else "resolved", labels=labels,
        annotations={"summary": summary[:2000]}, starts_at=at, ends_at=None if firing else at, received_at=at,
        source="zerotouch-gdpr",
    )


def incident_for(event: AlertEvent, group_by: list[str], cluster: str = "") -> str:
    return incident_id_for(event, [*group_by, REQUEST_LABEL], cluster)
