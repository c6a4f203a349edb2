"""GovernorWorkflow: the one place that grants automated actions for a cluster scope.

A long-lived entity (`governor-<cluster>`): every incident asks it before acting, so
cooldowns, the global rate, blast radius, circuit breakers, trust, budget and the kill
switch hold across all incidents and survive restarts. Handlers are synchronous and do
no I/O, so a grant is decided within the workflow task that delivers the request; all
logic lives in `zerotouch.guardrails`, this file only routes and keeps history short.
Its limits come only from the workers' policy (the `governor_settings` activity): no client
can start it with, or update it to, other numbers (SECURITY.md, "The Governor's guardrails").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch import approval_proofs, governor_status, guardrails, metric_names
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.governor_models import (
        GOVERNOR_WORKFLOW,
        QUERY_GOVERNOR_STATUS,
        SETTINGS_NOT_FROM_POLICY,
        SIGNAL_RECORD_DRILL_OUTCOME,
        SIGNAL_REPORT_OUTCOME,
        UPDATE_CLOSE_BREAKER,
        UPDATE_PAUSE,
        UPDATE_REQUEST_GRANT,
        UPDATE_RESUME,
        UPDATE_SET_MODE,
        UPDATE_SETTINGS,
        BreakerCloseInput,
        DrillOutcomeReport,
        GovernorAck,
        GovernorBook,
        GovernorInput,
        GovernorSettings,
        GovernorStatus,
        GrantDecision,
        GrantRequest,
        ModeInput,
        OutcomeReport,
        PauseInput,
        ResumeInput,
    )
    from zerotouch.models import PolicyRequest
    from zerotouch.names import queue_for
    from zerotouch.node_lease_models import (
        SIGNAL_RELEASE_NODE_LEASE,
        SIGNAL_RENEW_NODE_LEASE,
        UPDATE_REQUEST_NODE_LEASE,
        NodeLeaseDecision,
        NodeLeaseRenewal,
        NodeLeaseRequest,
    )
    from zerotouch.node_leases import decide_lease, release_lease, renew_lease

# Settings come only from the workers' policy file (the `governor_settings` activity): a client can
# start a Governor or send `update_settings`, but cannot choose the limits. Patched in, so Governors
# that were running before replay as they ran.
SETTINGS_FROM_POLICY_PATCH = "settings-from-policy"
CALLED = frozenset({names.GOVERNOR_SETTINGS})  # checked by tests/activities/test_registration.py
SETTINGS_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(name=GOVERNOR_WORKFLOW)
class GovernorWorkflow:
    @workflow.init
    def __init__(self, params: GovernorInput) -> None:
        self._settings = params.settings
        continued = workflow.info().continued_run_id is not None
        # Like the settings, the book (pause, mode, breakers, trust) is carried only by the Governor's
        # own continue-as-new: a client starting a Governor cannot hand it a book of its choosing.
        self._book = (params.book if continued else None) or GovernorBook()
        self._cluster = params.cluster
        self._run_limit = params.continue_as_new_after
        self._handled = 0  # in this run; continue-as-new resets it, the book keeps the total
        self._pause_version = 0
        # Only a run the Governor continued itself may trust the settings it was handed; the server
        # sets continued_run_id, so a client starting a Governor cannot claim it.
        self._settings_trusted = params.settings_from_policy and continued

    @workflow.run
    async def run(self, params: GovernorInput) -> None:
        if not self._settings_trusted:
            if workflow.patched(SETTINGS_FROM_POLICY_PATCH):
                # Grants wait until the policy's settings are in (request_grant waits on this flag).
                self._settings = await self._policy_settings()
            self._settings_trusted = True
        while not self._history_full():
            # Sleep until the pause expires (to journal it) or something changes; decisions
            # compare against workflow.now() anyway, so the timer only makes the expiry visible.
            pause = guardrails.paused(self._book, workflow.now())
            try:
                await workflow.wait_condition(
                    self._wake_on_change(self._pause_version),
                    timeout=pause.until - workflow.now() if pause else None,
                )
            except TimeoutError:
                guardrails.expire_pause(self._book, workflow.now())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            GovernorInput(settings=self._settings, cluster=self._cluster, book=self._book,
                          continue_as_new_after=self._run_limit, settings_from_policy=True)
        )

    def _wake_on_change(self, seen: int) -> Callable[[], bool]:
        return lambda: self._history_full() or self._pause_version != seen

    def _history_full(self) -> bool:
        return self._handled >= self._run_limit or workflow.info().is_continue_as_new_suggested()

    # --- grants -----------------------------------------------------------------------

    @workflow.update(name=UPDATE_REQUEST_GRANT)
    async def request_grant(self, request: GrantRequest) -> GrantDecision:
        await workflow.wait_condition(lambda: self._settings_trusted)
        self._handled += 1
        decision = guardrails.decide(self._book, self._settings, request, workflow.now())
        _count_decision(decision)
        return decision

    @workflow.signal(name=SIGNAL_REPORT_OUTCOME)
    def report_outcome(self, report: OutcomeReport) -> None:
        self._handled += 1
        message = guardrails.release(self._book, self._settings, report, workflow.now())
        workflow.logger.info("outcome: %s", message)

    @workflow.signal(name=SIGNAL_RECORD_DRILL_OUTCOME)
    def record_drill_outcome(self, report: DrillOutcomeReport) -> None:
        self._handled += 1
        workflow.logger.info("drill: %s", guardrails.record_drill(self._book, report, workflow.now()))

    # --- the capacity budget: node leases (zerotouch.node_leases) ------------------------

    @workflow.update(name=UPDATE_REQUEST_NODE_LEASE)
    async def request_node_lease(self, request: NodeLeaseRequest) -> NodeLeaseDecision:
        await workflow.wait_condition(lambda: self._settings_trusted)
        self._handled += 1
        return decide_lease(self._book, self._settings, request, workflow.now())

    @workflow.signal(name=SIGNAL_RENEW_NODE_LEASE)
    def renew_node_lease(self, renewal: NodeLeaseRenewal) -> None:
        # Not counted towards continue-as-new: a heartbeat every few minutes would only shorten runs.
        workflow.logger.info("lease: %s", renew_lease(self._book, self._settings, renewal, workflow.now()))

    @workflow.signal(name=SIGNAL_RELEASE_NODE_LEASE)
    def release_node_lease(self, renewal: NodeLeaseRenewal) -> None:
        self._handled += 1
        workflow.logger.info("lease: %s", release_lease(self._book, renewal, workflow.now()))

    # --- humans -----------------------------------------------------------------------

    @workflow.update(name=UPDATE_PAUSE)
    def pause(self, request: PauseInput) -> GovernorAck:
        self._pause_version += 1
        return GovernorAck(message=guardrails.pause(self._book, request, workflow.now()))

    @pause.validator
    def _check_pause(self, request: PauseInput) -> None:
        _require_name(request.by)

    @workflow.update(name=UPDATE_RESUME)
    def resume(self, request: ResumeInput) -> GovernorAck:
        identity = self._spend_proof(request.by, request.proof, approval_proofs.RESUME, self._resume_request())
        self._pause_version += 1
        request = request.model_copy(update={"note": _noted(request.note, identity)})
        return GovernorAck(message=guardrails.resume(self._book, request, workflow.now()))

    @resume.validator
    def _check_resume(self, request: ResumeInput) -> None:
        _require_name(request.by)
        self._require_approver(request.by, "resume automation")
        _refuse_if(guardrails.why_not_resume(self._book, workflow.now()), "NotPaused")
        self._require_proof(request.by, request.proof, approval_proofs.RESUME, self._resume_request())

    @workflow.update(name=UPDATE_SET_MODE)
    def set_mode(self, request: ModeInput) -> GovernorAck:
        if request.mode == "auto":
            wanted = approval_proofs.mode_request(self._book.mode)
            identity = self._spend_proof(request.by, request.proof, approval_proofs.MODE_AUTO, wanted)
            request = request.model_copy(update={"reason": _noted(request.reason, identity)})
        return GovernorAck(message=guardrails.set_mode(self._book, request, workflow.now()))

    @set_mode.validator
    def _check_set_mode(self, request: ModeInput) -> None:
        _require_name(request.by)
        if request.mode == "auto":
            self._require_approver(request.by, "switch to auto mode")
            self._require_proof(request.by, request.proof, approval_proofs.MODE_AUTO,
                                approval_proofs.mode_request(self._book.mode))

    @workflow.update(name=UPDATE_CLOSE_BREAKER)
    def close_breaker(self, request: BreakerCloseInput) -> GovernorAck:
        wanted = self._breaker_request(request.runbook)
        identity = self._spend_proof(request.by, request.proof, approval_proofs.CLOSE_BREAKER, wanted)
        request = request.model_copy(update={"note": _noted(request.note, identity)})
        return GovernorAck(message=guardrails.close_breaker(self._book, request, workflow.now()))

    @close_breaker.validator
    def _check_close_breaker(self, request: BreakerCloseInput) -> None:
        _require_name(request.by)
        self._require_approver(request.by, "close a circuit breaker")
        _refuse_if(guardrails.why_not_close(self._book, request.runbook), "BreakerNotOpen")
        self._require_proof(request.by, request.proof, approval_proofs.CLOSE_BREAKER,
                            self._breaker_request(request.runbook))

    @workflow.update(name=UPDATE_SETTINGS)
    async def update_settings(self, proposed: GovernorSettings) -> GovernorAck:
        """Take the workers' policy settings, if `proposed` is what they say; refuse anything else.

        Accepted (not validated away) so that a refusal stays in the history with the policy's
        settings next to what was proposed: who tried to change the limits is on record.
        """
        if not workflow.patched(SETTINGS_FROM_POLICY_PATCH):
            self._settings = proposed
            return GovernorAck(message="settings updated")
        policy = await self._policy_settings()
        if proposed != policy:
            workflow.metric_meter().create_counter(
                metric_names.GOVERNOR_SETTINGS_REFUSED, "settings updates refused: not the workers' policy").add(1)
            changed = sorted(field for field in GovernorSettings.model_fields
                             if getattr(proposed, field) != getattr(policy, field))
            _refuse_if(f"refused: these settings are not the workers' policy (differs in {', '.join(changed)}); "
                       "only the policy file the workers read changes the Governor's limits", SETTINGS_NOT_FROM_POLICY)
        changed_now = policy != self._settings
        self._settings = policy
        return GovernorAck(message="settings updated from the workers' policy" if changed_now
                           else "settings already match the workers' policy")

    async def _policy_settings(self) -> GovernorSettings:
        settings: GovernorSettings = await workflow.execute_activity(
            names.GOVERNOR_SETTINGS, PolicyRequest(), result_type=GovernorSettings,
            task_queue=queue_for(names.queue_of(names.GOVERNOR_SETTINGS), self._cluster),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=SETTINGS_RETRY,
        )
        return settings

    def _require_approver(self, by: str, what: str) -> None:
        # Loosening a guardrail takes an approver of the policy; tightening one (pause,
        # observe, approve-all) is open to anyone, so stopping automation is never blocked.
        # Approvers and their keys are settings: none count until the workers' policy is read.
        _refuse_if(None if self._settings_trusted else
                   "the Governor is still reading its settings from the workers' policy; try again in a moment",
                   "SettingsLoading")
        approvers = self._settings.approvers
        if approvers is not None and by not in approvers:
            _refuse_if(f"{by!r} is not an approver in the policy and may not {what}", "NotAnApprover")

    # Proofs of who loosens (SECURITY.md, "Approvals"): the validator checks, the handler checks
    # again and spends, so one proof loosens one thing once. Rotate and erase can call the same pair.

    def _require_proof(self, by: str, proof: ApprovalProof | None, decision: str,
                       request_id: str) -> approval_proofs.Accepted | None:
        """In verified mode, the accepted proof that `by` decided `decision` on `request_id`; refuses otherwise."""
        if self._settings.identity != "verified":
            return None
        wanted = approval_proofs.Wanted(workflow.info().workflow_id, request_id, decision, by)
        try:
            return approval_proofs.check(proof, wanted=wanted, keys=self._settings.approver_keys.get(by, []),
                                         spent=self._book.spent_proofs, now=workflow.now())
        except approval_proofs.ProofRefused as refused:
            raise ApplicationError(str(refused), type=refused.kind, non_retryable=True) from None

    def _spend_proof(self, by: str, proof: ApprovalProof | None, decision: str, request_id: str) -> str:
        """Check and spend the proof (verified mode); returns how the identity was established."""
        accepted = self._require_proof(by, proof, decision, request_id)
        if accepted is None:
            return approval_proofs.ASSERTED
        approval_proofs.spend(self._book.spent_proofs, accepted, workflow.now())
        return accepted.describe()

    def _resume_request(self) -> str:
        pause = self._book.pause
        return approval_proofs.resume_request(pause.until) if pause else "not-paused"

    def _breaker_request(self, runbook: str) -> str:
        breaker = self._book.breakers.get(runbook)
        return approval_proofs.breaker_request(runbook, breaker.opened_at if breaker else None)

    @workflow.query(name=QUERY_GOVERNOR_STATUS)
    def status(self) -> GovernorStatus:
        return governor_status.status(self._book, self._settings, workflow.now())


def _count_decision(decision: GrantDecision) -> None:
    """Every decision by code; refusals (neither granted nor sent to a human) by reason."""
    meter = workflow.metric_meter()
    meter.create_counter(metric_names.GOVERNOR_DECISIONS, "grant decisions").add(1, {"code": decision.code})
    if not decision.granted and not decision.needs_approval:
        meter.create_counter(metric_names.GOVERNOR_REFUSALS, "grants refused").add(1, {"reason": decision.code})


def _noted(text: str, identity: str) -> str:
    return f"{text} ({identity})" if text else identity


def _require_name(by: str) -> None:
    # The model already demands one character; a name of blanks would hide who acted.
    _refuse_if(None if by.strip() else "say who you are: `by` must name a person", "MissingName")


def _refuse_if(problem: str | None, kind: str) -> None:
    if problem is not None:
        raise ApplicationError(problem, type=kind, non_retryable=True)
