"""One remediation attempt: approval if needed, the action, then its verification."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.models import ActionRecord, ActionRequest, PromQLCheck, PromQLResult, RolloutCheck, RolloutStatus
    from zerotouch.policy import Policy, Runbook, Step
    from zerotouch.triage import Triage, approval_reason, bounds_of, is_forbidden, render_promql

from workflows import incident_calls as calls
from workflows.incident_state import IncidentBook

# Actions whose effect shows in the deployment's rollout, so rollout health verifies them.
_DEPLOYMENT_ACTIONS = {"restart_deployment", "scale_deployment", "rollback_deployment", "raise_memory_limit"}


class Outcome(enum.Enum):
    VERIFIED = "verified"
    FAILED = "failed"
    NOT_ACTIONABLE = "not_actionable"
    STOPPED = "stopped"
    CLEARED = "cleared"


class Remediation:
    def __init__(self, book: IncidentBook, policy: Policy, cluster: str) -> None:
        self._book = book
        self._cluster = cluster
        self._policy = policy
        self.last_failure = ""
        self._step_index = 0
        self._last_action_at: datetime | None = None

    @property
    def _triage(self) -> Triage:
        assert self._book.triage is not None
        return self._book.triage

    @property
    def _runbook(self) -> Runbook:
        assert self._triage.runbook is not None
        return self._triage.runbook

    def _next_step_index(self) -> int:
        return min(self._book.attempts, len(self._runbook.steps) - 1)

    def _next_step(self) -> Step:
        return self._runbook.steps[self._next_step_index()]

    def retry_cooldown(self) -> timedelta:
        return max(self._runbook.retry_cooldown, self._policy.guardrails.target_cooldown)

    async def _respect_target_cooldown(self) -> bool:
        """Never act on the same target twice inside the policy's target cooldown (5 min by default).

        Returns False when a human stepped in while waiting.
        """
        book = self._book
        if self._last_action_at is None:
            return True
        ready_at = self._last_action_at + self._policy.guardrails.target_cooldown
        if ready_at <= workflow.now():
            return True
        book.note("action", f"target cooldown: next action on {self._triage.target} not before {ready_at:%H:%M:%S}")
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: book.aborted_by is not None or book.owner is not None, timeout=ready_at - workflow.now()
            )
        return book.aborted_by is None and book.owner is None

    def blocker(self) -> str | None:
        """Why automation must not even try, or None."""
        triage = self._triage
        if triage.runbook is None:
            return "no runbook matches this alert"
        if triage.target_error:
            return triage.target_error
        step = self._next_step()
        if step.action == "escalate":
            return "the runbook says to escalate"
        if is_forbidden(self._policy, step):
            return f"the policy never allows {step.risk_class or step.action}"
        return None

    async def attempt(self) -> Outcome:
        book, triage, step = self._book, self._triage, self._next_step()
        reason = approval_reason(self._policy, step, triage.confidence)
        if reason is not None:
            outcome = await self._await_approval(step, reason)
            if outcome is not None:
                return outcome
        if self._policy.mode == "observe":
            book.note("action", f"observe mode: would run {step.action} on {triage.target}; executed nothing")
            self.last_failure = "observe mode: the planned action was recorded, not executed"
            return Outcome.NOT_ACTIONABLE
        if not await self._respect_target_cooldown():
            return Outcome.STOPPED
        self._step_index = self._next_step_index()
        self._last_action_at = workflow.now()
        book.attempts += 1
        request = self._request(step)
        book.set_state("remediating")
        book.note("action", f"attempt {book.attempts}: {step.action} on {triage.target}")
        try:
            result = await calls.apply_action(request, self._cluster)
        except ActivityError as error:
            return self._action_failed(request, error)
        applied = "already applied" if result.already_applied else "applied"
        self._record(request, applied, result.detail)
        book.note("action", f"{step.action} {applied}: {result.detail}")
        book.set_state("verifying")
        verified, detail = await self._verify(request)
        book.note("verification", ("verified: " if verified else "not verified: ") + detail)
        if verified:
            return Outcome.VERIFIED
        self.last_failure = f"verification failed after {step.action}: {detail}"
        return Outcome.FAILED

    async def _await_approval(self, step: Step, reason: str) -> Outcome | None:
        book = self._book
        pending = book.request_approval(f"{step.action} on {self._triage.target}", reason)
        await workflow.wait_condition(
            lambda: book.approved_request == pending.request_id
            or book.aborted_by is not None
            or book.owner is not None
            or not book.is_firing
        )
        if book.approved_request == pending.request_id:
            book.approved_request = None
            return None
        if book.aborted_by is None and book.owner is None:
            book.pending = None
            return Outcome.CLEARED
        return Outcome.STOPPED

    def _request(self, step: Step) -> ActionRequest:
        triage, info = self._triage, workflow.info()
        template: dict[str, Any] | None = None
        if step.action == "run_job":
            template = self._policy.job_templates[str(step.params["template"])].model_dump(mode="json")
        return ActionRequest(
            action=step.action,
            namespace=triage.namespace or "",
            name=triage.deployment or "",
            pod=triage.pod,
            params=dict(step.params),
            # Same key on every retry of this attempt: the activity acts at most once per key.
            idempotency_key=f"{info.workflow_id}/{info.run_id}/attempt-{self._book.attempts}",
            incident_id=self._book.incident_id,
            bounds=bounds_of(self._policy),
            job_template=template,
        )

    def _action_failed(self, request: ActionRequest, error: ActivityError) -> Outcome:
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        self._record(request, "failed", message)
        self._book.note("action", f"{request.action} failed: {message}")
        self.last_failure = f"{request.action} failed: {message}"
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            return Outcome.NOT_ACTIONABLE
        return Outcome.FAILED

    def _record(self, request: ActionRequest, outcome: str, detail: str) -> None:
        self._book.actions.append(
            ActionRecord(
                step=self._step_index,
                attempt=self._book.attempts,
                action=request.action,
                target=self._triage.target,
                idempotency_key=request.idempotency_key,
                outcome=outcome,
                detail=detail,
                at=workflow.now(),
            )
        )

    async def _verify(self, request: ActionRequest) -> tuple[bool, str]:
        verify, triage = self._runbook.verify, self._triage
        hold, timeout = verify.hold_for.total_seconds(), verify.timeout.total_seconds()
        checks: list[Coroutine[Any, Any, RolloutStatus | PromQLResult]] = []
        if verify.rollout and request.action in _DEPLOYMENT_ACTIONS and triage.deployment:
            rollout = RolloutCheck(
                namespace=request.namespace,
                deployment=request.name,
                hold_for_seconds=hold,
                timeout_seconds=timeout,
                poll_seconds=min(1.0, max(0.1, hold / 5)),
            )
            checks.append(calls.wait_for_rollout(rollout, self._cluster))
        if verify.promql:
            expression = render_promql(verify.promql, triage.namespace, triage.deployment)
            promql = PromQLCheck(expression=expression, hold_for_seconds=hold, timeout_seconds=timeout)
            checks.append(calls.wait_for_promql(promql, self._cluster))
        if not checks:
            return await self._verify_by_alert(verify.timeout)
        try:
            results = await asyncio.gather(*checks)
        except ActivityError as error:
            return False, f"verification could not run: {error.cause or error}"
        healthy = all(r.healthy if isinstance(r, RolloutStatus) else r.holds for r in results)
        return healthy, "; ".join(r.detail for r in results if r.detail) or ("healthy" if healthy else "unhealthy")

    async def _verify_by_alert(self, timeout: timedelta) -> tuple[bool, str]:
        book = self._book
        try:
            await workflow.wait_condition(lambda: not book.is_firing, timeout=timeout)
        except TimeoutError:
            return False, f"the alert still fires after {timeout}"
        return True, "the alert resolved at the source"
