"""GovernorWorkflow: the one place that grants automated actions for a cluster scope.

A long-lived entity (`governor-<cluster>`): every incident asks it before acting, so
cooldowns, the global rate, blast radius, circuit breakers, trust, budget and the kill
switch hold across all incidents and survive restarts. Handlers are synchronous and do
no I/O, so a grant is decided within the workflow task that delivers the request; all
logic lives in `zerotouch.guardrails`, this file only routes and keeps history short.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import guardrails
    from zerotouch import metric_names as names
    from zerotouch.governor_models import (
        GOVERNOR_WORKFLOW,
        QUERY_GOVERNOR_STATUS,
        SIGNAL_REPORT_OUTCOME,
        UPDATE_CLOSE_BREAKER,
        UPDATE_PAUSE,
        UPDATE_REQUEST_GRANT,
        UPDATE_RESUME,
        UPDATE_SET_MODE,
        UPDATE_SETTINGS,
        BreakerCloseInput,
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


@workflow.defn(name=GOVERNOR_WORKFLOW)
class GovernorWorkflow:
    @workflow.init
    def __init__(self, params: GovernorInput) -> None:
        self._settings = params.settings
        self._book = params.book or GovernorBook()
        self._cluster = params.cluster
        self._run_limit = params.continue_as_new_after
        self._handled = 0  # in this run; continue-as-new resets it, the book keeps the total
        self._pause_version = 0

    @workflow.run
    async def run(self, params: GovernorInput) -> None:
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
                          continue_as_new_after=self._run_limit)
        )

    def _wake_on_change(self, seen: int) -> Callable[[], bool]:
        return lambda: self._history_full() or self._pause_version != seen

    def _history_full(self) -> bool:
        return self._handled >= self._run_limit or workflow.info().is_continue_as_new_suggested()

    # --- grants -----------------------------------------------------------------------

    @workflow.update(name=UPDATE_REQUEST_GRANT)
    def request_grant(self, request: GrantRequest) -> GrantDecision:
        self._handled += 1
        decision = guardrails.decide(self._book, self._settings, request, workflow.now())
        _count_decision(decision)
        return decision

    @workflow.signal(name=SIGNAL_REPORT_OUTCOME)
    def report_outcome(self, report: OutcomeReport) -> None:
        self._handled += 1
        message = guardrails.release(self._book, self._settings, report, workflow.now())
        workflow.logger.info("outcome: %s", message)

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
        self._pause_version += 1
        return GovernorAck(message=guardrails.resume(self._book, request, workflow.now()))

    @resume.validator
    def _check_resume(self, request: ResumeInput) -> None:
        _require_name(request.by)
        self._require_approver(request.by, "resume automation")
        _refuse_if(guardrails.why_not_resume(self._book, workflow.now()), "NotPaused")

    @workflow.update(name=UPDATE_SET_MODE)
    def set_mode(self, request: ModeInput) -> GovernorAck:
        return GovernorAck(message=guardrails.set_mode(self._book, request, workflow.now()))

    @set_mode.validator
    def _check_set_mode(self, request: ModeInput) -> None:
        _require_name(request.by)
        if request.mode == "auto":
            self._require_approver(request.by, "switch to auto mode")

    @workflow.update(name=UPDATE_CLOSE_BREAKER)
    def close_breaker(self, request: BreakerCloseInput) -> GovernorAck:
        return GovernorAck(message=guardrails.close_breaker(self._book, request, workflow.now()))

    @close_breaker.validator
    def _check_close_breaker(self, request: BreakerCloseInput) -> None:
        _require_name(request.by)
        self._require_approver(request.by, "close a circuit breaker")
        _refuse_if(guardrails.why_not_close(self._book, request.runbook), "BreakerNotOpen")

    @workflow.update(name=UPDATE_SETTINGS)
    def update_settings(self, settings: GovernorSettings) -> GovernorAck:
        self._settings = settings
        return GovernorAck(message="settings updated")

    def _require_approver(self, by: str, what: str) -> None:
        # Loosening a guardrail takes an approver of the policy; tightening one (pause,
        # observe, approve-all) is open to anyone, so stopping automation is never blocked.
        approvers = self._settings.approvers
        if approvers is not None and by not in approvers:
            _refuse_if(f"{by!r} is not an approver in the policy and may not {what}", "NotAnApprover")

    @workflow.query(name=QUERY_GOVERNOR_STATUS)
    def status(self) -> GovernorStatus:
        return guardrails.status(self._book, self._settings, workflow.now())


def _count_decision(decision: GrantDecision) -> None:
    """Every decision by code; refusals (neither granted nor sent to a human) by reason."""
    meter = workflow.metric_meter()
    meter.create_counter(names.GOVERNOR_DECISIONS, "grant decisions").add(1, {"code": decision.code})
    if not decision.granted and not decision.needs_approval:
        meter.create_counter(names.GOVERNOR_REFUSALS, "grants refused").add(1, {"reason": decision.code})


def _require_name(by: str) -> None:
    # The model already demands one character; a name of blanks would hide who acted.
    _refuse_if(None if by.strip() else "say who you are: `by` must name a person", "MissingName")


def _refuse_if(problem: str | None, kind: str) -> None:
    if problem is not None:
        raise ApplicationError(problem, type=kind, non_retryable=True)
