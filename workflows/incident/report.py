"""How an incident shows itself: its status (the query), the Web UI's summary and search attributes.

Reads the `Incident`, never changes it (transitions live in `state.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.models import IncidentStatus
    from zerotouch.names import SA_INCIDENT_SEVERITY, SA_INCIDENT_STATE, SA_RUNBOOK, SA_SERVICE
    from zerotouch.triage import Triage

if TYPE_CHECKING:
    from workflows.incident.state import Incident


def publish(incident: Incident) -> None:
    """Search attributes and the Web UI's summary follow the state."""
    triage = incident.triage
    updates = [SA_INCIDENT_STATE.value_set(incident.state)]
    if triage is not None:
        updates += [
            SA_INCIDENT_SEVERITY.value_set(triage.severity),
            SA_RUNBOOK.value_set(triage.runbook.name if triage.runbook else "none"),
            SA_SERVICE.value_set(triage.service or "unknown"),
        ]
    workflow.upsert_search_attributes(updates)
    workflow.set_current_details(details(incident))


def details(incident: Incident) -> str:
    """The Web UI's markdown summary: state, triage, owner, pending approval, the last timeline entries."""
    triage = incident.triage
    lines = [f"**{incident.state}**" + (" (frozen)" if incident.frozen else "")]
    if triage is not None:
        runbook = triage.runbook.name if triage.runbook else "none"
        lines.append(f"severity {triage.severity} · runbook {runbook} · target {triage.target or '-'}")
    lines += evidence(incident)
    if incident.owner:
        lines.append(f"owned by {incident.owner}")
    pending = incident.pending
    if pending is not None:
        until = f", until {pending.expires_at:%H:%M} UTC" if pending.expires_at else ""
        lines.append(f"awaiting approval: {pending.what} ({pending.reason}{until})")
    elif incident.state == "escalated" and incident.owner is None:
        lines.append("waiting for a human: take it over or abort it")
    lines += [f"- {e.at:%H:%M:%S} {e.kind}: {e.message}" for e in incident.timeline[-8:]]
    return "\n".join(lines)


# What the alert's authors wrote for the person who gets it (kube-prometheus fills all three).
EVIDENCE_ANNOTATIONS = ("summary", "description", "runbook_url")
_EVIDENCE_LIMIT = 400


def evidence(incident: Incident) -> list[str]:
    """The first alert's own explanation, for a human the incident escalates to."""
    return [f"{name}: {incident.annotations[name][:_EVIDENCE_LIMIT]}"
            for name in EVIDENCE_ANNOTATIONS if incident.annotations.get(name)]


def status(incident: Incident) -> IncidentStatus:
    triage = incident.triage
    return IncidentStatus(
        incident_id=incident.incident_id,
        state=incident.state,
        severity=triage.severity if triage else None,
        runbook=incident.runbook_name,
        confidence=triage.confidence if triage else None,
        service=triage.service if triage else "",
        target=triage.target if triage else "",
        frozen=incident.frozen,
        owner=incident.owner,
        attempts=incident.attempts,
        alerts_received=incident.alerts_received,
        firing=incident.is_firing,
        detected_at=incident.detected_at,
        resolved_at=incident.resolved_at,
        pending_approval=incident.pending,
        actions=list(incident.actions),
        timeline=list(incident.timeline),
        labels=dict(incident.labels),
    )


def triage_summary(result: Triage) -> str:
    if result.runbook is None:
        return f"severity {result.severity}; no runbook matches: log and escalate"
    target = result.target or f"invalid target ({result.target_error})"
    return (
        f"severity {result.severity}; runbook {result.runbook.name} "
        f"(confidence {result.confidence:.2f}); target {target}"
    )
