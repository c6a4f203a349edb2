"""What an incident knows about itself: state, alerts, timeline, pending approval.

Kept apart from the orchestration in `incident.py` so that `run` reads as the
operation and this file as the bookkeeping. Every change lands in the timeline
with workflow time, which is the incident's audit trail.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.alerts import AlertEvent
    from zerotouch.models import (
        ActionRecord,
        IncidentState,
        IncidentStatus,
        PendingApproval,
        TimelineEntry,
    )
    from zerotouch.names import SA_INCIDENT_SEVERITY, SA_INCIDENT_STATE, SA_RUNBOOK, SA_SERVICE
    from zerotouch.triage import Triage

from workflows.incident import metrics


class IncidentBook:
    """The incident's bookkeeping; every mutation records a timeline entry."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        self.state: IncidentState = "open"
        self.triage: Triage | None = None
        self.timeline: list[TimelineEntry] = []
        self.actions: list[ActionRecord] = []
        self.firing: dict[str, bool] = {}
        self.labels: dict[str, str] = {}
        self.alerts_received = 0
        self.detected_at: datetime | None = None
        self.alert_started_at: datetime | None = None
        self.frozen_ever = False
        self.verified_by_automation = False
        self.resolved_at: datetime | None = None
        self.refired = False
        self.frozen = False
        self.owner: str | None = None
        self.aborted_by: str | None = None
        self.pending: PendingApproval | None = None
        self.approved_request: str | None = None
        self.approved_by: str | None = None
        self.attempts = 0
        self.allowed_attempts = 0

    # --- alerts -------------------------------------------------------------------

    def alert_fired(self, event: AlertEvent) -> None:
        self.alerts_received += 1
        seen = event.fingerprint in self.firing
        was_firing = self.firing.get(event.fingerprint, False)
        self.firing[event.fingerprint] = True
        if self.detected_at is None:
            self.detected_at = workflow.now()
            self.alert_started_at = event.starts_at
            self.labels = dict(event.labels)
            self.note("detected", f"{event.alertname} firing since {event.starts_at.isoformat()}", "alertmanager")
        elif not seen:
            self.note("detected", f"another alert joined: {event.alertname} ({event.fingerprint})", "alertmanager")
        elif not was_firing:
            # A flap: it resolved and fired again while the incident is open.
            self.note("detected", f"{event.alertname} fired again (flap)", "alertmanager")
            metrics.alert_suppressed("flap")
            if self.state == "resolved":
                self.refired = True
        else:
            # Repeats of a firing alert (Alertmanager's repeat_interval, duplicate receivers)
            # are counted only; a timeline entry each would drown the audit trail.
            metrics.alert_deduplicated()

    def alert_resolved(self, event: AlertEvent) -> None:
        self.alerts_received += 1
        if self.firing.get(event.fingerprint):
            self.firing[event.fingerprint] = False
            self.note("detected", f"{event.alertname} resolved at the source", "alertmanager")

    @property
    def is_firing(self) -> bool:
        return any(self.firing.values())

    # --- state --------------------------------------------------------------------

    def note(self, kind: str, message: str, actor: str = "zerotouch") -> None:
        self.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, message=message, actor=actor))

    def set_state(self, state: IncidentState) -> None:
        if state == self.state:
            return
        self.state = state
        self.publish()

    def publish(self) -> None:
        """Search attributes and the Web UI's summary follow the state."""
        triage = self.triage
        updates = [SA_INCIDENT_STATE.value_set(self.state)]
        if triage is not None:
            updates += [
                SA_INCIDENT_SEVERITY.value_set(triage.severity),
                SA_RUNBOOK.value_set(triage.runbook.name if triage.runbook else "none"),
                SA_SERVICE.value_set(triage.service or "unknown"),
            ]
        workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self.details())

    def details(self) -> str:
        triage = self.triage
        lines = [f"**{self.state}**" + (" (frozen)" if self.frozen else "")]
        if triage is not None:
            runbook = triage.runbook.name if triage.runbook else "none"
            lines.append(f"severity {triage.severity} · runbook {runbook} · target {triage.target or '-'}")
        if self.owner:
            lines.append(f"owned by {self.owner}")
        if self.pending is not None:
            lines.append(f"awaiting approval: {self.pending.what} ({self.pending.reason})")
        lines += [f"- {e.at:%H:%M:%S} {e.kind}: {e.message}" for e in self.timeline[-8:]]
        return "\n".join(lines)

    def request_approval(self, what: str, reason: str, requested_by: str = "zerotouch") -> PendingApproval:
        self.pending = PendingApproval(
            request_id=str(workflow.uuid4()),
            what=what,
            reason=reason,
            requested_by=requested_by,
            requested_at=workflow.now(),
        )
        self.approved_request = None
        self.note("approval", f"approval requested for {what}: {reason}", requested_by)
        self.set_state("awaiting_approval")
        self.publish()
        metrics.approval_requested()
        return self.pending

    def settle_pending(self, decision: str) -> None:
        """The pending approval (if any) ended: approved, aborted, taken over, or cleared."""
        if self.pending is not None:
            metrics.approval_decided(decision, self.pending.requested_at)
            self.pending = None

    @property
    def human_steps(self) -> bool:
        """Whether a person approved, aborted, retried or took over anything in this incident."""
        return any(entry.actor not in metrics.MACHINE_ACTORS for entry in self.timeline)

    def status(self) -> IncidentStatus:
        triage = self.triage
        return IncidentStatus(
            incident_id=self.incident_id,
            state=self.state,
            severity=triage.severity if triage else None,
            runbook=triage.runbook.name if triage and triage.runbook else None,
            confidence=triage.confidence if triage else None,
            service=triage.service if triage else "",
            target=triage.target if triage else "",
            frozen=self.frozen,
            owner=self.owner,
            attempts=self.attempts,
            alerts_received=self.alerts_received,
            firing=self.is_firing,
            detected_at=self.detected_at,
            resolved_at=self.resolved_at,
            pending_approval=self.pending,
            actions=list(self.actions),
            timeline=list(self.timeline),
            labels=dict(self.labels),
        )
