"""What an incident knows about itself, and every transition it may make.

`Incident` is the single owner of the incident's state: the other modules of this
package read its fields and call its methods, never assign them. Each transition
records a timeline entry with workflow time (the incident's audit trail) and moves
the state at most once, so the Web UI's search attributes change once per step.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.alerts import AlertEvent
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.durations import format_duration
    from zerotouch.models import (
        ActionRecord,
        IncidentState,
        IncidentStatus,
        PendingApproval,
        TimelineEntry,
    )
    from zerotouch.triage import Triage

from workflows.incident import metrics, report

# States after which nothing more happens to the incident.
FINAL_STATES: tuple[IncidentState, ...] = ("aborted", "closed")


class Incident:
    """The incident's state and its transitions; every mutation records a timeline entry."""

    def __init__(self, incident_id: str) -> None:
        self.incident_id = incident_id
        self.state: IncidentState = "open"
        self.triage: Triage | None = None
        self.timeline: list[TimelineEntry] = []
        self.actions: list[ActionRecord] = []
        self.firing: dict[str, bool] = {}
        self.labels: dict[str, str] = {}
        self.annotations: dict[str, str] = {}  # the first alert's: its summary, description, runbook_url
        self.alerts_received = 0
        self.detected_at: datetime | None = None
        self.alert_started_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.refired = False
        self.source_url = ""  # the latest externalURL its deliveries named: `source.py` asks it before closing
        self.confirming_at_source = False
        # Escalation: `frozen` while automation may not act; `frozen_ever` for the ledger's outcome;
        # `escalated_at` and `escalation_reason` start the ladder's "failed" rungs (first escalation only).
        self.frozen = False
        self.frozen_ever = False
        self.escalated_at: datetime | None = None
        self.escalation_reason = ""
        self.verified_by_automation = False
        # People.
        self.owner: str | None = None
        self.aborted_by: str | None = None
        self.pending: PendingApproval | None = None
        self.approved_request: str | None = None
        self.approved_by: str | None = None
        self.approval_proof: ApprovalProof | None = None  # the approver's, for the Governor to check again
        self.expired_approval: PendingApproval | None = None  # the last request that lapsed unanswered
        # Attempts: `allowed_attempts` grows by one per approved retry.
        self.attempts = 0
        self.allowed_attempts = 0

    # --- questions ----------------------------------------------------------------

    @property
    def is_firing(self) -> bool:
        return any(self.firing.values())

    @property
    def human_stepped_in(self) -> bool:
        """Whether a person aborted or took over: automation must stop."""
        return self.aborted_by is not None or self.owner is not None

    @property
    def is_over(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def runbook_name(self) -> str | None:
        runbook = self.triage.runbook if self.triage else None
        return runbook.name if runbook else None

    @property
    def human_steps(self) -> bool:
        """Whether a person approved, aborted, retried or took over anything in this incident."""
        return any(entry.actor not in metrics.MACHINE_ACTORS for entry in self.timeline)

    # --- alerts -------------------------------------------------------------------

    def alert_fired(self, event: AlertEvent) -> None:
        self.alerts_received += 1
        self.source_url = event.external_url or self.source_url
        seen = event.fingerprint in self.firing
        was_firing = self.firing.get(event.fingerprint, False)
        self.firing[event.fingerprint] = True
        if self.detected_at is None:
            self.detected_at = workflow.now()
            self.alert_started_at = event.starts_at
            self.labels = dict(event.labels)
            self.annotations = dict(event.annotations)
            self.note("detected", f"{event.alertname} firing since {event.starts_at.isoformat()}", "alertmanager")
        elif not seen:
            self.note("detected", f"another alert joined: {event.alertname} ({event.fingerprint})", "alertmanager")
        elif not was_firing:
            # A flap: it resolved and fired again while the incident is open.
            self.note("detected", f"{event.alertname} fired again (flap)", "alertmanager")
            metrics.alert_suppressed("flap")
            if self.state == "resolved" or self.confirming_at_source:
                self.refired = True
        else:
            # Repeats of a firing alert (Alertmanager's repeat_interval, duplicate receivers)
            # are counted only; a timeline entry each would drown the audit trail.
            metrics.alert_deduplicated()

    def alert_resolved(self, event: AlertEvent) -> None:
        self.alerts_received += 1
        self.source_url = event.external_url or self.source_url
        if self.firing.get(event.fingerprint):
            self.firing[event.fingerprint] = False
            self.note("detected", f"{event.alertname} resolved at the source", "alertmanager")

    # --- lifecycle ----------------------------------------------------------------

    def closed_unopened(self) -> None:
        """Only resolved deliveries arrived: nothing is wrong, nothing to do."""
        self.note("resolution", "closed: the alert was already resolved")
        self._enter("closed")
        metrics.alert_suppressed("already_resolved")

    def merged_into(self, home: str, workload: str) -> None:
        """Its alerts turned out to be about a workload another incident handles: that one takes them."""
        self.note("resolution", f"merged into {home} ({workload})")
        self._enter("closed")

    def triaged(self, result: Triage) -> None:
        self.triage = result
        runbook = result.runbook
        self.allowed_attempts = runbook.max_attempts if runbook else 0
        self.note("triage", report.triage_summary(result))
        self._enter("triaged")
        metrics.incident_opened(result.severity, runbook.name if runbook else "none",
                                self.alert_started_at, self.detected_at)

    def attempt_started(self, step_action: str, target: str, confidence: float) -> int:
        """Count an attempt that the Governor granted (at the confidence it measured); returns its number."""
        assert self.triage is not None
        self.triage.confidence = confidence
        self.attempts += 1
        self._enter("remediating")
        self.note("action", f"attempt {self.attempts}: {step_action} on {target}")
        return self.attempts

    def action_recorded(self, record: ActionRecord) -> None:
        self.actions.append(record)

    def verifying(self) -> None:
        self._enter("verifying")

    def cooling_down(self, message: str) -> None:
        self.note("action", message)
        self._enter("remediating")

    def resolved(self, why: str, actor: str, *, by_automation: bool = False) -> None:
        """Recovered; the incident stays open for the resolution cooldown in case it fires again."""
        if by_automation:
            self.verified_by_automation = True
        self.resolved_at = workflow.now()
        self._settle_pending("cleared")
        self.note("resolution", why, actor)
        self._enter("resolved")
        self.refired = False

    def active_at_source(self, fingerprints: list[str], message: str) -> None:
        """Alertmanager still lists some of its alerts as active: as if the relay had delivered them firing."""
        for fingerprint in fingerprints:
            self.firing[fingerprint] = True
        self.note("detected", message, "alertmanager")
        self.refired = True

    def source_confirmed(self, message: str) -> None:
        """Alertmanager lists none of its alerts as active (or cannot be asked): the incident may close."""
        self.note("resolution", message)
        if self.state == "escalated":  # escalated while Alertmanager could not be reached
            self._enter("resolved")

    def reopened(self) -> None:
        """It fired again within the cooldown: the fix did not hold."""
        self.refired = False
        self.resolved_at = None
        self.note("triage", "fired again within the cooldown: the fix did not hold")
        self._enter("triaged")

    # --- escalation ---------------------------------------------------------------

    def escalate(self, reason: str) -> None:
        """Tell people (the ladder's "failed" rungs start from the first escalation) without freezing."""
        if self.escalated_at is None:
            self.escalated_at = workflow.now()
            self.escalation_reason = reason
        self._enter("escalated")

    def freeze(self, reason: str) -> None:
        """Automation gave up: escalate, and ask for one more attempt if there is a runbook to retry."""
        self.frozen = self.frozen_ever = True
        self.note("escalation", f"escalated and frozen: {reason}")
        if self.runbook_name is not None:
            # Stands until answered: approving it re-plans the attempt from the situation then.
            self._ask(f"one more attempt of runbook {self.runbook_name}", reason, "zerotouch", None,
                      keeps_expired=True)
        self.escalate(reason)

    def thawed(self) -> None:
        """An approver allowed one more attempt of a frozen incident."""
        self.frozen = False
        self.allowed_attempts = self.attempts + 1
        self.approved_request = None
        self._settle_pending("approved")
        self._enter("triaged")

    # --- approvals and people -----------------------------------------------------

    def request_approval(self, what: str, reason: str, expire_after: timedelta | None = None) -> PendingApproval:
        """Ask a human before acting; the incident waits in awaiting_approval until `expire_after`."""
        pending = self._ask(what, reason, "zerotouch", expire_after)
        self._enter("awaiting_approval")
        return pending

    def request_retry(self, by: str, reason: str, expire_after: timedelta | None = None) -> None:
        """A person asks for one more attempt of a frozen incident; another approver must approve."""
        self._ask(f"one more attempt of runbook {self.runbook_name}", reason, by, expire_after)
        self._enter("escalated")

    def approve(self, by: str, note: str, proof: ApprovalProof | None = None) -> None:
        assert self.pending is not None
        self.approved_request = self.pending.request_id
        self.approved_by = by
        self.approval_proof = proof
        self.note("approval", f"approved {self.pending.what}" + _with_note(note), by)
        self._settle_pending("approved")
        self.publish()

    def abort(self, by: str, reason: str) -> None:
        self.aborted_by = by
        self._settle_pending("aborted")
        self.note("abort", f"aborted: {reason}", by)
        self._enter("aborted")

    def take_over(self, by: str, note: str) -> None:
        self.owner = by
        self._settle_pending("taken_over")
        self.note("take_over", "a human owns the incident; automation stopped" + _with_note(note), by)
        self._enter("taken_over")

    async def sleep_unless_stopped(self, period: timedelta) -> bool:
        """Sleep durably unless a human aborts or takes over; True if automation may go on."""
        try:
            await workflow.wait_condition(lambda: self.human_stepped_in, timeout=period)
        except TimeoutError:
            return True
        return not self.human_stepped_in

    async def wait_while_firing(self, period: timedelta) -> bool:
        """Wait durably while the alert fires and no human stepped in; True if automation may go on."""
        try:
            await workflow.wait_condition(lambda: self.human_stepped_in or not self.is_firing, timeout=period)
        except TimeoutError:
            return True
        return False

    # --- the record ---------------------------------------------------------------

    def note(self, kind: str, message: str, actor: str = "zerotouch") -> None:
        self.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, message=message, actor=actor))

    def publish(self) -> None:
        """Search attributes and the Web UI's summary follow the state."""
        report.publish(self)

    def status(self) -> IncidentStatus:
        return report.status(self)

    # --- internals ----------------------------------------------------------------

    def _enter(self, state: IncidentState) -> None:
        if state == self.state:
            return
        self.state = state
        self.publish()

    def _ask(self, what: str, reason: str, requested_by: str, expire_after: timedelta | None, *,
             keeps_expired: bool = False) -> PendingApproval:
        now = workflow.now()
        self.pending = PendingApproval(
            request_id=str(workflow.uuid4()),
            what=what,
            reason=reason,
            requested_by=requested_by,
            requested_at=now,
            expires_at=now + expire_after if expire_after else None,
        )
        self.approved_request = None
        if not keeps_expired:  # the freeze after a lapsed request: approving that one stays refused
            self.expired_approval = None
        until = f" (stands for {format_duration(expire_after)})" if expire_after else ""
        self.note("approval", f"approval requested for {what}: {reason}{until}", requested_by)
        metrics.approval_requested()
        return self.pending

    def approval_cleared(self) -> None:
        """The alert resolved while a request for approval waited: nothing left to approve."""
        self._settle_pending("cleared")

    def approval_expired(self, pending: PendingApproval) -> None:
        """Nobody answered `pending` in time: record it; approving it stays refused until a retry."""
        self.expired_approval = pending
        self._settle_pending("expired")
        self.note("approval", f"the approval request for {pending.what} expired unanswered; nothing was done "
                              "(a retry asks again)")

    def _settle_pending(self, decision: str) -> None:
        """The pending approval (if any) ended: approved, aborted, taken over, or cleared."""
        if self.pending is not None:
            metrics.approval_decided(decision, self.pending.requested_at)
            self.pending = None


def _with_note(note: str) -> str:
    return f" — {note}" if note else ""
