"""IncidentWorkflow: triage → (approval) → act → verify → resolve, or escalate and freeze.

One workflow per incident key. Alertmanager deliveries arrive as signals
(repeats and flaps are absorbed); humans steer through validated updates;
every step lands in the timeline, which is the incident's audit trail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.alerts import WORKLOAD_GROUP, AlertEvent, group_value, incident_id_for
    from zerotouch.durations import format_duration
    from zerotouch.ledger_models import LedgerEntryInput
    from zerotouch.models import (
        AbortInput,
        AlertForward,
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
        SIGNAL_ABORT,
        SIGNAL_ALERT_FIRED,
        SIGNAL_ALERT_RESOLVED,
        SIGNAL_APPROVE,
        SIGNAL_REQUEST_RETRY,
        SIGNAL_TAKE_OVER,
        UPDATE_ABORT,
        UPDATE_APPROVE,
        UPDATE_REQUEST_RETRY,
        UPDATE_TAKE_OVER,
    )
    from zerotouch.policy import Policy
    from zerotouch.triage import triage
    from zerotouch.workloads import WorkloadRef, named_ref, needs_resolution, resolution_query


from workflows.incident import calls, decisions, human_waits, metrics
from workflows.incident.ladder import EscalationLadder
from workflows.incident.remediation import AttemptOutcome, Remediation
from workflows.incident.source import CONFIRM_AT_SOURCE_PATCH, SourceConfirmation
from workflows.incident.state import Incident
from workflows.incident.symptom import CONFIRM_SYMPTOM_PATCH, SymptomGate, SymptomVerdict


@workflow.defn(name=INCIDENT_WORKFLOW)
class IncidentWorkflow:
    @workflow.init
    def __init__(self, params: IncidentInput) -> None:
        self._incident = Incident(params.incident_id)
        self._policy: Policy | None = params.policy
        self._cluster = params.cluster
        # The latest delivery of each alert: what a merge hands on (`_merge_into_its_workloads`).
        self._alerts: dict[str, AlertEvent] = {}
        self._spent_proofs: decisions.SpentProofs = {}  # approval proofs used once, until they expire
        self._symptom_settled = False  # the symptom was confirmed, or a human owns the question

    @workflow.run
    async def run(self, params: IncidentInput) -> IncidentStatus:
        """The incident's whole lifecycle: triage, respond until over, record."""
        incident = self._incident
        policy = self._policy = self._policy or await calls.load_policy(params.cluster)
        await workflow.wait_condition(lambda: incident.alerts_received > 0)
        if incident.detected_at is None:
            incident.closed_unopened()
            return incident.status()
        workload = await self._resolve_workload()
        if await self._merge_into_its_workloads(policy, workload):
            return incident.status()
        incident.triaged(triage(policy, incident.labels, workload))
        ladder_task = asyncio.create_task(EscalationLadder(incident, policy, params.cluster).run())
        try:
            await self._respond(policy)
        finally:
            ladder_task.cancel()
        await self._record(policy)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return incident.status()

    async def _resolve_workload(self) -> WorkloadRef | None:
        """The workload the alert is about: named by its labels, or found from a pod's owner references."""
        incident = self._incident
        if not needs_resolution(incident.labels):
            return named_ref(incident.labels)
        try:
            workload = await calls.resolve_workload(resolution_query(incident.labels), self._cluster)
        except ActivityError as error:
            workload = WorkloadRef(reason=f"owner resolution failed: {error.cause or error}")
        incident.note("triage", f"workload: {workload.describe()}")
        return workload

    async def _merge_into_its_workloads(self, policy: Policy, workload: WorkloadRef | None) -> bool:
        """Hand the alerts to the workload's incident when the relay's cheap key guessed another.

        The relay groups by the name a pod's name points to; a pod with a hand-made name owned by
        shop/web lands elsewhere. Owner resolution knows better: its alerts join shop/web's incident
        (started if needed) and this one closes as merged, so the workload gets one incident and one
        action. Returns whether it merged.
        """
        incident = self._incident
        if workload is None or not workload.found or WORKLOAD_GROUP not in policy.group_by:
            return False
        if workload.name == group_value(incident.labels, WORKLOAD_GROUP) or not self._alerts:
            return False
        first = next(iter(self._alerts.values()))
        home_labels = {**first.labels, WORKLOAD_GROUP: workload.name}
        home = incident_id_for(first.model_copy(update={"labels": home_labels}), policy.group_by, self._cluster)
        if home == incident.incident_id:
            return False
        forward = AlertForward(incident_id=home, cluster=self._cluster, events=list(self._alerts.values()))
        try:
            await calls.forward_alerts(forward, self._cluster)
        except ActivityError as error:
            incident.note("triage", f"could not merge into {home} ({error.cause or error}); handling it here")
            return False
        incident.merged_into(home, workload.describe())
        return True

    async def _respond(self, policy: Policy) -> None:
        """Loop until the incident is over: act while allowed, otherwise wait for people."""
        incident = self._incident
        remediation = Remediation(incident, policy, self._cluster)
        while not incident.is_over:
            if incident.owner is not None:
                await workflow.wait_condition(lambda: incident.aborted_by is not None or not incident.is_firing)
                if incident.aborted_by is None and await self._stays_resolved(
                    policy, f"recovered while {incident.owner} owned the incident", incident.owner
                ):
                    return
                continue
            if incident.frozen:
                if incident.state != "escalated":  # it cleared, then fired again: still a human's call
                    incident.freeze("it fired again after clearing while escalated")
                await human_waits.retry_approved_or_cleared(incident)
                if (
                    not incident.is_firing
                    and not incident.human_stepped_in
                    and await self._stays_resolved(policy, "the alert resolved without automation", "alertmanager")
                ):
                    return
                continue
            blocker = remediation.blocker()
            if blocker is not None:
                incident.freeze(blocker)
                continue
            verdict = await self._symptom_verdict()
            if verdict is SymptomVerdict.CLEARED:
                if await self._stays_resolved(policy, "the alert resolved; the workload never showed its symptom",
                                              "alertmanager"):
                    return
                continue
            if verdict is not SymptomVerdict.CONFIRMED:  # STOPPED: the loop's checks take it from here
                continue
            outcome = await remediation.attempt()
            if outcome is AttemptOutcome.VERIFIED:
                if await self._stays_resolved(policy, "recovery verified", "zerotouch", by_automation=True):
                    return
            elif outcome is AttemptOutcome.CLEARED:
                if await self._stays_resolved(policy, "the alert resolved before any action", "alertmanager"):
                    return
            elif outcome is AttemptOutcome.NOT_ACTIONABLE:
                incident.freeze(remediation.last_failure)
            elif outcome is AttemptOutcome.FAILED:
                if incident.attempts >= incident.allowed_attempts:
                    incident.freeze(f"recovery failed {incident.attempts} times ({remediation.last_failure})")
                else:
                    period = remediation.retry_cooldown()
                    incident.cooling_down(f"retrying after a cooldown of {format_duration(period)}")
                    await incident.sleep_unless_stopped(period)
            # AttemptOutcome.STOPPED: a human aborted or took over; the loop's checks take it from here.

    async def _symptom_verdict(self) -> SymptomVerdict:
        """Before the first action: does the workload show what the alert claims (`symptom.py`)?"""
        incident = self._incident
        runbook = incident.triage.runbook if incident.triage is not None else None
        if self._symptom_settled or incident.attempts > 0 or runbook is None or runbook.confirm is None:
            return SymptomVerdict.CONFIRMED
        if not workflow.patched(CONFIRM_SYMPTOM_PATCH):
            return SymptomVerdict.CONFIRMED
        assert incident.triage is not None
        gate = SymptomGate(incident, incident.triage, self._cluster)
        verdict = await gate.verdict(runbook.confirm)
        if verdict is SymptomVerdict.UNCONFIRMED:
            self._symptom_settled = True  # from here a human decides; a retry they ask for acts
            incident.freeze(f"the alert fired for {format_duration(runbook.confirm.give_up_after)} but "
                            f"{incident.triage.target} never showed it ({gate.detail}): the alert rule may be wrong")
        elif verdict is SymptomVerdict.CONFIRMED:
            self._symptom_settled = True
        return verdict

    async def _stays_resolved(self, policy: Policy, why: str, actor: str, *, by_automation: bool = False) -> bool:
        """Mark resolved, then stay open for the cooldown so a re-fire joins this incident; before
        closing, Alertmanager confirms that none of its alerts is still active (`source.py`).

        Returns True when the incident is over, False when it fired again.
        """
        incident = self._incident
        incident.resolved(why, actor, by_automation=by_automation)
        try:
            await workflow.wait_condition(
                lambda: incident.refired or incident.aborted_by is not None, timeout=policy.resolution_cooldown
            )
        except TimeoutError:
            if not workflow.patched(CONFIRM_AT_SOURCE_PATCH) or await SourceConfirmation(
                incident, policy, self._cluster, self._alerts.values()
            ).allows_close():
                incident.note("resolution",
                              f"closed after a quiet cooldown of {format_duration(policy.resolution_cooldown)}")
                return True
        if incident.aborted_by is not None:
            return True
        incident.reopened()
        return False

    async def _record(self, policy: Policy) -> None:
        """Append the closed incident to the audit ledger (with its post-mortem)."""
        incident = self._incident
        status = incident.status()
        outcome: str = status.state if status.state in ("aborted", "closed") else "resolved"
        if status.state == "resolved" and not incident.verified_by_automation:
            # A person owned it (also when the kill switch, not a freeze, sent it to them).
            if incident.owner:
                outcome = "taken_over"
            elif incident.frozen_ever:
                outcome = "escalated"
        severity = status.severity or policy.severity.default
        entry = LedgerEntryInput(
            status=status,
            run_id=workflow.info().run_id,
            outcome=outcome,  # type: ignore[arg-type]
            first_alert_starts_at=incident.alert_started_at,
            user_impact=policy.user_impact.get(severity, ""),
            closed_at=workflow.now(),
        )
        metrics.incident_closed(outcome, incident.human_steps)
        if incident.resolved_at is not None:
            metrics.recovered(incident.alert_started_at, incident.resolved_at, incident.human_steps)
        try:
            receipt = await calls.append_to_ledger(entry, self._cluster)
        except ActivityError as error:
            # The workflow history stays the audit trail of record; say that the ledger missed it.
            incident.note("resolution", f"could not write the ledger record: {error.cause or error}")
            return
        incident.note("resolution", f"recorded in the ledger as #{receipt.seq}")

    # --- signals ----------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_ALERT_FIRED)
    def alert_fired(self, event: AlertEvent) -> None:
        self._alerts[event.fingerprint] = event
        self._incident.alert_fired(event)

    @workflow.signal(name=SIGNAL_ALERT_RESOLVED)
    def alert_resolved(self, event: AlertEvent) -> None:
        self._alerts[event.fingerprint] = event
        self._incident.alert_resolved(event)

    # --- query --------------------------------------------------------------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> IncidentStatus:
        return self._incident.status()

    # --- updates (validators reject without touching state; rules in decisions.py) -----

    @workflow.update(name=UPDATE_APPROVE)
    def approve(self, decision: ApproveInput) -> HumanDecision:
        return self._decision(decisions.approve(self._incident, self._policy, decision, self._spent_proofs))

    @approve.validator
    def _check_approve(self, decision: ApproveInput) -> None:
        decisions.check_approve(self._incident, self._policy, decision, self._spent_proofs)

    @workflow.update(name=UPDATE_ABORT)
    def abort(self, decision: AbortInput) -> HumanDecision:
        return self._decision(decisions.abort(self._incident, decision))

    @abort.validator
    def _check_abort(self, decision: AbortInput) -> None:
        decisions.check_abort(self._incident)

    @workflow.update(name=UPDATE_TAKE_OVER)
    def take_over(self, decision: TakeOverInput) -> HumanDecision:
        return self._decision(decisions.take_over(self._incident, decision))

    @take_over.validator
    def _check_take_over(self, decision: TakeOverInput) -> None:
        decisions.check_take_over(self._incident)

    @workflow.update(name=UPDATE_REQUEST_RETRY)
    def request_retry(self, request: RetryRequestInput) -> HumanDecision:
        return self._decision(decisions.request_retry(self._incident, self._policy, request, self._spent_proofs))

    @request_retry.validator
    def _check_request_retry(self, request: RetryRequestInput) -> None:
        decisions.check_request_retry(self._incident, self._policy, request, self._spent_proofs)

    # --- the same decisions as signals, for the Web UI's Signal dialog -----------------
    # A signal cannot be refused: one the validator would refuse changes nothing but a timeline note.

    @workflow.signal(name=SIGNAL_APPROVE)
    def approve_signal(self, decision: ApproveInput) -> None:
        if self._signal_allowed(SIGNAL_APPROVE, decision.by, lambda: self._check_approve(decision)):
            decisions.approve(self._incident, self._policy, decision, self._spent_proofs)

    @workflow.signal(name=SIGNAL_ABORT)
    def abort_signal(self, decision: AbortInput) -> None:
        if self._signal_allowed(SIGNAL_ABORT, decision.by, lambda: self._check_abort(decision)):
            decisions.abort(self._incident, decision)

    @workflow.signal(name=SIGNAL_TAKE_OVER)
    def take_over_signal(self, decision: TakeOverInput) -> None:
        if self._signal_allowed(SIGNAL_TAKE_OVER, decision.by, lambda: self._check_take_over(decision)):
            decisions.take_over(self._incident, decision)

    @workflow.signal(name=SIGNAL_REQUEST_RETRY)
    def request_retry_signal(self, request: RetryRequestInput) -> None:
        if self._signal_allowed(SIGNAL_REQUEST_RETRY, request.by, lambda: self._check_request_retry(request)):
            decisions.request_retry(self._incident, self._policy, request, self._spent_proofs)

    def _signal_allowed(self, name: str, by: str, check: Callable[[], None]) -> bool:
        try:
            check()
        except ApplicationError as refused:
            self._incident.note("refused", f"{name} signal from {by!r} refused ({refused.type}): {refused.message}")
            return False
        return True

    def _decision(self, message: str) -> HumanDecision:
        return HumanDecision(incident_id=self._incident.incident_id, state=self._incident.state, message=message)
