"""IncidentWorkflow: triage → (approval) → act → verify → resolve, or escalate and freeze.

One workflow per incident key. Alertmanager deliveries arrive as signals
(repeats and flaps are absorbed); humans steer through validated updates;
every step lands in the timeline, which is the incident's audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.alerts import AlertEvent
    from zerotouch.durations import format_duration
    from zerotouch.ledger_models import LedgerEntryInput
    from zerotouch.models import (
        AbortInput,
        ApproveInput,
        HumanDecision,
        IncidentInput,
        IncidentStatus,
        RetryRequestInput,
        TakeOverInput,
    )
    from zerotouch.names import (
        INCIDENT_WORKFLOW,
        QUERY_STATUS,
        SIGNAL_ALERT_FIRED,
        SIGNAL_ALERT_RESOLVED,
        UPDATE_ABORT,
        UPDATE_APPROVE,
        UPDATE_REQUEST_RETRY,
        UPDATE_TAKE_OVER,
    )
    from zerotouch.policy import Policy
    from zerotouch.triage import triage


from workflows.incident import calls, metrics
from workflows.incident.ladder import EscalationLadder
from workflows.incident.remediation import Outcome, Remediation
from workflows.incident.state import IncidentBook


@workflow.defn(name=INCIDENT_WORKFLOW)
class IncidentWorkflow:
    @workflow.init
    def __init__(self, params: IncidentInput) -> None:
        self._book = IncidentBook(params.incident_id)
        self._policy: Policy | None = params.policy
        self._ladder: EscalationLadder | None = None
        self._cluster = params.cluster

    @workflow.run
    async def run(self, params: IncidentInput) -> IncidentStatus:
        book = self._book
        policy = self._policy = self._policy or await calls.load_policy(params.cluster)
        await workflow.wait_condition(lambda: book.alerts_received > 0)
        if book.detected_at is None:
            # Only resolved deliveries arrived: nothing is wrong, nothing to do.
            book.note("resolution", "closed: the alert was already resolved")
            book.set_state("closed")
            metrics.alert_suppressed("already_resolved")
            return book.status()
        book.triage = triage(policy, book.labels)
        runbook = book.triage.runbook
        book.allowed_attempts = runbook.max_attempts if runbook else 0
        book.note("triage", self._triage_summary(), "zerotouch")
        book.set_state("triaged")
        metrics.incident_opened(book.triage.severity, runbook.name if runbook else "none",
                                book.alert_started_at, book.detected_at)
        ladder = self._ladder = EscalationLadder(book, policy, params.cluster)
        ladder_task = asyncio.create_task(ladder.run())
        try:
            await self._respond(policy, ladder)
        finally:
            ladder_task.cancel()
        await self._record(policy)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return book.status()

    async def _record(self, policy: Policy) -> None:
        """Append the closed incident to the audit ledger (with its post-mortem)."""
        book = self._book
        status = book.status()
        outcome: str = status.state if status.state in ("aborted", "closed") else "resolved"
        if status.state == "resolved" and not book.verified_by_automation:
            # A person owned it (also when the kill switch, not a freeze, sent it to them).
            if book.owner:
                outcome = "taken_over"
            elif book.frozen_ever:
                outcome = "escalated"
        severity = status.severity or policy.severity.default
        entry = LedgerEntryInput(
            status=status,
            run_id=workflow.info().run_id,
            outcome=outcome,  # type: ignore[arg-type]
            first_alert_starts_at=book.alert_started_at,
            user_impact=policy.user_impact.get(severity, ""),
            closed_at=workflow.now(),
        )
        metrics.incident_closed(outcome, book.human_steps)
        if book.resolved_at is not None:
            metrics.recovered(book.alert_started_at, book.resolved_at, book.human_steps)
        try:
            receipt = await calls.append_to_ledger(entry, self._cluster)
        except ActivityError as error:
            # The workflow history stays the audit trail of record; say that the ledger missed it.
            book.note("resolution", f"could not write the ledger record: {error.cause or error}")
            return
        book.note("resolution", f"recorded in the ledger as #{receipt.seq}")

    async def _respond(self, policy: Policy, ladder: EscalationLadder) -> None:
        """Loop until the incident is over: act while allowed, otherwise wait for people."""
        book = self._book
        remediation = Remediation(book, policy, self._cluster, escalate=ladder.escalate)
        while book.state not in ("aborted", "closed"):
            if book.owner is not None:
                await workflow.wait_condition(lambda: book.aborted_by is not None or not book.is_firing)
                if book.aborted_by is None and await self._resolved(
                    policy, f"recovered while {book.owner} owned the incident", book.owner
                ):
                    return
                continue
            if book.frozen:
                if book.state != "escalated":  # it cleared, then fired again: still a human's call
                    self._freeze(ladder, "it fired again after clearing while escalated")
                await self._wait_frozen()
                if (
                    not book.is_firing
                    and book.aborted_by is None
                    and book.owner is None
                    and await self._resolved(policy, "the alert resolved without automation", "alertmanager")
                ):
                    return
                continue
            blocker = remediation.blocker()
            if blocker is not None:
                self._freeze(ladder, blocker)
                continue
            outcome = await remediation.attempt()
            if outcome is Outcome.VERIFIED:
                book.verified_by_automation = True
                if await self._resolved(policy, "recovery verified", "zerotouch"):
                    return
                continue
            if outcome is Outcome.CLEARED:
                if await self._resolved(policy, "the alert resolved before any action", "alertmanager"):
                    return
                continue
            if outcome is Outcome.STOPPED:
                continue
            if outcome is Outcome.NOT_ACTIONABLE:
                self._freeze(ladder, remediation.last_failure)
                continue
            if book.attempts >= book.allowed_attempts:
                self._freeze(ladder, f"recovery failed {book.attempts} times ({remediation.last_failure})")
                continue
            await self._cool_down(remediation.retry_cooldown())

    async def _resolved(self, policy: Policy, why: str, actor: str) -> bool:
        """Mark resolved, then stay open for the cooldown so a re-fire joins this incident.

        Returns True when the incident is over, False when it fired again.
        """
        book = self._book
        book.resolved_at = workflow.now()
        book.settle_pending("cleared")
        book.note("resolution", why, actor)
        book.set_state("resolved")
        book.refired = False
        try:
            await workflow.wait_condition(
                lambda: book.refired or book.aborted_by is not None, timeout=policy.resolution_cooldown
            )
        except TimeoutError:
            book.note("resolution", f"closed after a quiet cooldown of {format_duration(policy.resolution_cooldown)}")
            return True
        if book.aborted_by is not None:
            return True
        book.refired = False
        book.resolved_at = None
        book.note("triage", "fired again within the cooldown: the fix did not hold")
        book.set_state("triaged")
        return False

    def _freeze(self, ladder: EscalationLadder, reason: str) -> None:
        book = self._book
        book.frozen = book.frozen_ever = True
        book.note("escalation", f"escalated and frozen: {reason}")
        book.set_state("escalated")
        ladder.escalate(reason)
        runbook = book.triage.runbook if book.triage else None
        if runbook is not None:
            book.request_approval(f"one more attempt of runbook {runbook.name}", reason)
            book.set_state("escalated")

    async def _wait_frozen(self) -> None:
        """No automated action until a human approves, aborts or takes over (or it clears)."""
        book = self._book
        await workflow.wait_condition(
            lambda: book.approved_request is not None
            or book.aborted_by is not None
            or book.owner is not None
            or not book.is_firing
        )
        if book.approved_request is not None and book.aborted_by is None and book.owner is None:
            book.frozen = False
            book.allowed_attempts = book.attempts + 1
            book.approved_request = None
            book.settle_pending("approved")
            book.set_state("triaged")

    async def _cool_down(self, period: timedelta) -> None:
        book = self._book
        book.note("action", f"retrying after a cooldown of {format_duration(period)}")
        book.set_state("remediating")
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: book.aborted_by is not None or book.owner is not None, timeout=period
            )

    def _triage_summary(self) -> str:
        result = self._book.triage
        assert result is not None
        if result.runbook is None:
            return f"severity {result.severity}; no runbook matches: log and escalate"
        target = result.target or f"invalid target ({result.target_error})"
        return (
            f"severity {result.severity}; runbook {result.runbook.name} "
            f"(confidence {result.confidence:.2f}); target {target}"
        )

    # --- signals ----------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_ALERT_FIRED)
    def alert_fired(self, event: AlertEvent) -> None:
        self._book.alert_fired(event)

    @workflow.signal(name=SIGNAL_ALERT_RESOLVED)
    def alert_resolved(self, event: AlertEvent) -> None:
        self._book.alert_resolved(event)

    # --- query --------------------------------------------------------------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> IncidentStatus:
        return self._book.status()

    # --- updates (validators reject without touching state) ---------------------------

    @workflow.update(name=UPDATE_APPROVE)
    def approve(self, decision: ApproveInput) -> HumanDecision:
        book = self._book
        assert book.pending is not None
        book.approved_request = book.pending.request_id
        book.approved_by = decision.by
        book.note("approval", f"approved {book.pending.what}" + _with_note(decision.note), decision.by)
        book.settle_pending("approved")
        book.publish()
        return self._decision(f"approved by {decision.by}")

    @approve.validator
    def _check_approve(self, decision: ApproveInput) -> None:
        book = self._book
        self._require_open()
        if book.pending is None:
            raise ApplicationError(f"nothing awaits approval on {book.incident_id}", type="NothingToApprove")
        if self._policy is None or not self._policy.approvers.allows(decision.by):
            raise ApplicationError(
                f"{decision.by!r} is not an approver in the policy; ask one of its approvers",
                type="NotAnApprover",
            )
        if self._policy.four_eyes and decision.by == book.pending.requested_by:
            raise ApplicationError(
                f"{decision.by!r} requested this and may not approve it; another approver must",
                type="SelfApproval",
            )

    @workflow.update(name=UPDATE_ABORT)
    def abort(self, decision: AbortInput) -> HumanDecision:
        book = self._book
        book.aborted_by = decision.by
        book.settle_pending("aborted")
        book.note("abort", f"aborted: {decision.reason}", decision.by)
        book.set_state("aborted")
        return self._decision(f"aborted by {decision.by}")

    @abort.validator
    def _check_abort(self, decision: AbortInput) -> None:
        self._require_open()

    @workflow.update(name=UPDATE_TAKE_OVER)
    def take_over(self, decision: TakeOverInput) -> HumanDecision:
        book = self._book
        book.owner = decision.by
        book.settle_pending("taken_over")
        book.note("take_over", "a human owns the incident; automation stopped" + _with_note(decision.note), decision.by)
        book.set_state("taken_over")
        return self._decision(f"taken over by {decision.by}")

    @take_over.validator
    def _check_take_over(self, decision: TakeOverInput) -> None:
        self._require_open()
        if self._book.owner is not None:
            raise ApplicationError(f"{self._book.owner!r} already owns this incident", type="AlreadyOwned")

    @workflow.update(name=UPDATE_REQUEST_RETRY)
    def request_retry(self, request: RetryRequestInput) -> HumanDecision:
        book = self._book
        runbook = book.triage.runbook if book.triage else None
        assert runbook is not None
        reason = request.note or "retry requested"
        book.request_approval(f"one more attempt of runbook {runbook.name}", reason, request.by)
        book.set_state("escalated")
        return self._decision(f"retry requested by {request.by}; another approver must approve")

    @request_retry.validator
    def _check_request_retry(self, request: RetryRequestInput) -> None:
        self._require_open()
        book = self._book
        if not book.frozen:
            raise ApplicationError("only a frozen (escalated) incident can be retried", type="NotFrozen")
        if book.triage is None or book.triage.runbook is None:
            raise ApplicationError("no runbook matches this incident; take it over instead", type="NoRunbook")

    def _require_open(self) -> None:
        book = self._book
        if book.state in ("aborted", "closed"):
            raise ApplicationError(f"incident {book.incident_id} is {book.state}", type="IncidentClosed")

    def _decision(self, message: str) -> HumanDecision:
        return HumanDecision(incident_id=self._book.incident_id, state=self._book.state, message=message)


def _with_note(note: str) -> str:
    return f" — {note}" if note else ""


__all__ = ["ActivityError", "IncidentWorkflow"]
