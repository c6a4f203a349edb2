"""One remediation attempt, top to bottom: grant → (approval) → act → verify.

`Remediation.attempt` returns what happened; the incident's lifecycle in `workflow.py`
decides what follows (resolve, retry after a cooldown, or freeze and escalate).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch.action_params import RunJobParams, ScaleDeploymentParams
    from zerotouch.governor_models import GrantDecision, GrantRequest, OutcomeReport
    from zerotouch.governor_policy import requested_replicas
    from zerotouch.models import (
        ActionRecord,
        ActionRequest,
        ActionResult,
        PromQLCheck,
        PromQLResult,
        RolloutCheck,
        RolloutStatus,
    )
    from zerotouch.policy import Policy
    from zerotouch.runbooks import Runbook, Step
    from zerotouch.schedules import JobOutcome, JobWait
    from zerotouch.triage import (
        Triage,
        approval_reason,
        bounds_of,
        is_forbidden,
        mandatory_escalation,
        render_promql,
    )

from workflows.incident import calls, metrics
from workflows.incident.grant import GrantConversation, Granted, NeedsApproval, Refused
from workflows.incident.human_waits import Answer, answer_to
from workflows.incident.state import Incident

# Incidents that started before a run_job's Job was awaited replay as they ran.
VERIFY_JOB_PATCH = "verify-run-job-completion"
# Actions whose effect shows in the deployment's rollout, so rollout health verifies them.
_DEPLOYMENT_ACTIONS = {names.RESTART_DEPLOYMENT, names.SCALE_DEPLOYMENT, names.ROLLBACK_DEPLOYMENT,
                       names.RAISE_MEMORY_LIMIT}


class AttemptOutcome(enum.Enum):
    VERIFIED = "verified"  # acted, and recovery held
    FAILED = "failed"  # acted (or tried to), and it did not help: retry while attempts remain
    NOT_ACTIONABLE = "not_actionable"  # retrying cannot help: freeze and escalate
    STOPPED = "stopped"  # a human aborted or took over
    CLEARED = "cleared"  # the alert resolved before anything was done


class Remediation:
    def __init__(self, incident: Incident, policy: Policy, cluster: str) -> None:
        self._incident = incident
        self._cluster = cluster
        self._policy = policy
        self.last_failure = ""
        self._step_index = 0

    @property
    def _triage(self) -> Triage:
        assert self._incident.triage is not None
        return self._incident.triage

    @property
    def _runbook(self) -> Runbook:
        assert self._triage.runbook is not None
        return self._triage.runbook

    def _next_step_index(self) -> int:
        return min(self._incident.attempts, len(self._runbook.steps) - 1)

    def _next_step(self) -> Step:
        return self._runbook.steps[self._next_step_index()]

    def retry_cooldown(self) -> timedelta:
        return self._runbook.retry_cooldown

    def blocker(self) -> str | None:
        """Why automation must not even try, or None."""
        triage = self._triage
        if triage.runbook is None:
            return "no runbook matches this alert"
        if triage.target_error:
            return triage.target_error
        step = self._next_step()
        if step.action == "escalate":
            runbook = triage.runbook
            why = f": {runbook.description}" if runbook is not None and runbook.description else ""
            return f"the runbook says to escalate{why}"
        if is_forbidden(self._policy, step):
            return f"the policy never allows {step.risk_class or step.action}"
        return mandatory_escalation(self._policy, triage.subject_labels or self._incident.labels, step)

    async def attempt(self) -> AttemptOutcome:
        incident, triage, step = self._incident, self._triage, self._next_step()
        if self._policy.mode == "observe":
            incident.note("action", f"observe mode: would run {step.action} on {triage.target}; executed nothing")
            self.last_failure = "observe mode: the planned action was recorded, not executed"
            return AttemptOutcome.NOT_ACTIONABLE
        step_index = self._next_step_index()
        key = self._key(incident.attempts + 1)

        # 1. Grant: the Governor decides; it may want a human's approval first.
        governor = GrantConversation(incident, self._policy, self._cluster, await self._grant_request(step, key))
        answer = await governor.ask()
        if isinstance(answer, NeedsApproval):
            approved = await self._approval(step, answer.reason)
            if approved is Answer.EXPIRED:
                self.last_failure = "nobody approved in time: the approval request expired and nothing was done"
                return AttemptOutcome.NOT_ACTIONABLE
            if approved is not Answer.APPROVED:
                self.last_failure = "a human stopped the incident while approval was pending"
                return AttemptOutcome.CLEARED if approved is Answer.CLEARED else AttemptOutcome.STOPPED
            assert incident.approved_by is not None
            governor.approved_by(incident.approved_by, incident.approval_proof)
            answer = await governor.ask()
        if isinstance(answer, Refused):
            self.last_failure = answer.reason
            if answer.human:
                return AttemptOutcome.STOPPED if incident.human_stepped_in else AttemptOutcome.CLEARED
            incident.note("grant", answer.reason)
            return AttemptOutcome.NOT_ACTIONABLE
        assert isinstance(answer, Granted)  # NeedsApproval comes at most once: the second ask is approved
        decision = answer.decision

        # 2. Act, at most once per key however often the activity is retried.
        self._step_index = step_index
        request = self._request(step, key, decision.granted_replicas)
        incident.attempt_started(step.action, triage.target, decision.confidence)
        try:
            result = await calls.apply_action(request, self._cluster)
        except ActivityError as error:
            outcome = self._action_failed(request, error)
            await self._report(decision, verified=False, detail=self.last_failure)
            return outcome
        applied = "already applied" if result.already_applied else "applied"
        self._record(request, applied, result.detail)
        incident.note("action", f"{step.action} {applied}: {result.detail}")

        # 3. Verify, and tell the Governor (trust is measured from verified outcomes).
        incident.verifying()
        verified, detail = await self._verify(request, result)
        incident.note("verification", ("verified: " if verified else "not verified: ") + detail)
        await self._report(decision, verified=verified, detail=detail)
        if verified:
            return AttemptOutcome.VERIFIED
        self.last_failure = f"verification failed after {step.action}: {detail}"
        return AttemptOutcome.FAILED

    async def _approval(self, step: Step, reason: str) -> Answer:
        """Ask a human to approve this step, and wait for the answer."""
        local = approval_reason(self._policy, step)
        why = reason if not local or local in reason else f"{reason}; {local}"
        expire_after = self._policy.approvals.expiry_for(self._triage.severity)
        pending = self._incident.request_approval(f"{step.action} on {self._triage.target}", why, expire_after)
        return await answer_to(self._incident, pending)

    def _key(self, attempt: int) -> str:
        info = workflow.info()
        # Same key on every retry of this attempt: the activity acts at most once per key.
        return f"{info.workflow_id}/{info.run_id}/attempt-{attempt}"

    async def _grant_request(self, step: Step, key: str) -> GrantRequest:
        triage = self._triage
        local = approval_reason(self._policy, step)
        current = desired = nodes = None
        scale = step.typed_params
        if isinstance(scale, ScaleDeploymentParams) and triage.namespace and triage.deployment:
            rollout = await calls.get_rollout_status(
                RolloutCheck(namespace=triage.namespace, deployment=triage.deployment), self._cluster
            )
            current = rollout.desired
            desired = requested_replicas(current, scale)
            if self._policy.budget is not None:
                nodes = (await calls.get_cluster_usage(self._cluster)).nodes
        return GrantRequest(
            request_id=key,
            incident_id=self._incident.incident_id,
            runbook=self._runbook.name,
            alert_class=self._incident.labels.get("alertname", ""),
            action=step.action,
            namespace=triage.namespace or "",
            target=triage.deployment or "",
            risk_class=step.risk_class,
            risk="approval" if local else self._policy.risk_of(step),
            labels=dict(self._incident.labels),
            current_replicas=current,
            desired_replicas=desired,
            current_nodes=nodes,
            projected_nodes=nodes,
        )

    async def _report(self, decision: GrantDecision, *, verified: bool, detail: str) -> None:
        if decision.grant_id:
            report = OutcomeReport(grant_id=decision.grant_id, verified=verified, detail=detail[:500])
            await calls.report_outcome(report, self._cluster)

    def _request(self, step: Step, key: str, granted_replicas: int | None) -> ActionRequest:
        triage = self._triage
        template: dict[str, Any] | None = None
        # The step's parameters as written: ActionRequest keeps them as a plain mapping in history.
        params = dict(step.params)
        typed = step.typed_params
        if isinstance(typed, ScaleDeploymentParams) and granted_replicas is not None:
            params = ScaleDeploymentParams(replicas=granted_replicas).model_dump(exclude_none=True)
        if isinstance(typed, RunJobParams):
            template = self._policy.job_templates[typed.template].model_dump(mode="json")
        return ActionRequest(
            action=step.action,
            namespace=triage.namespace or "",
            name=triage.deployment or "",
            pod=triage.pod,
            params=params,
            idempotency_key=key,
            incident_id=self._incident.incident_id,
            bounds=bounds_of(self._policy),
            job_template=template,
        )

    def _action_failed(self, request: ActionRequest, error: ActivityError) -> AttemptOutcome:
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause or error)
        self._record(request, "failed", message)
        self._incident.note("action", f"{request.action} failed: {message}")
        self.last_failure = f"{request.action} failed: {message}"
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            return AttemptOutcome.NOT_ACTIONABLE
        return AttemptOutcome.FAILED

    def _record(self, request: ActionRequest, outcome: str, detail: str) -> None:
        metrics.action(request.action, outcome.replace(" ", "_"))
        self._incident.action_recorded(
            ActionRecord(
                step=self._step_index,
                attempt=self._incident.attempts,
                action=request.action,
                target=self._triage.target,
                idempotency_key=request.idempotency_key,
                outcome=outcome,
                detail=detail,
                at=workflow.now(),
            )
        )

    async def _verify(self, request: ActionRequest, result: ActionResult) -> tuple[bool, str]:
        verify, triage = self._runbook.verify, self._triage
        hold, timeout = verify.hold_for.total_seconds(), verify.timeout.total_seconds()
        checks: list[Coroutine[Any, Any, RolloutStatus | PromQLResult | JobOutcome]] = []
        job = str(result.after.get("job") or "") if request.action == names.RUN_JOB else ""
        if job and workflow.patched(VERIFY_JOB_PATCH):
            # The Job is the fix (a log cleanup, a renewal): it must finish, and succeed, within the timeout.
            # Without Prometheus this is the only proof; with it, the PromQL check must hold as well.
            wait = JobWait(namespace=request.namespace, job=job, timeout_seconds=timeout, poll_seconds=1.0)
            checks.append(calls.wait_for_job(wait, self._cluster))
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
        healthy = all(_healthy(r) for r in results)
        return healthy, "; ".join(r.detail for r in results if r.detail) or ("healthy" if healthy else "unhealthy")

    async def _verify_by_alert(self, timeout: timedelta) -> tuple[bool, str]:
        incident = self._incident
        try:
            await workflow.wait_condition(lambda: not incident.is_firing, timeout=timeout)
        except TimeoutError:
            return False, f"the alert still fires after {timeout}"
        return True, "the alert resolved at the source"


def _healthy(result: RolloutStatus | PromQLResult | JobOutcome) -> bool:
    if isinstance(result, RolloutStatus):
        return result.healthy
    if isinstance(result, PromQLResult):
        return result.holds
    return result.succeeded
