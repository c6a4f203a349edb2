"""SecretRotationWorkflow: rotate one credential, move its consumers, prove they moved, then revoke the old one.

One workflow per Secret (`rotation_workflow_id`), so two rotations of one secret never overlap.
create pending → set it in the target → test a login with it → finish (it becomes current, the old
one previous and still valid) → roll the consumers and wait until they run healthy → wait until
the old credential is out of use → revoke it. A failed test or consumers that do not come up roll
back (the previous credential never stopped working) and open an incident; a revoke is never done
on a timeout. The credential lives only in the Kubernetes Secret: here are versions and stages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import activity_names as names
    from zerotouch import rotation_secret as layout
    from zerotouch.governor_models import OutcomeReport
    from zerotouch.models import AbortInput, ApproveInput, TakeOverInput
    from zerotouch.names import QUERY_STATUS, UPDATE_ABORT, UPDATE_APPROVE, UPDATE_TAKE_OVER
    from zerotouch.policy import Policy
    from zerotouch.rotation_alerts import incident_for, rotation_event
    from zerotouch.rotation_models import RollbackInput, RotationOutcome, RotationResult, RotationStatus
    from zerotouch.rotations import (
        ROTATION_WORKFLOW,
        UPDATE_ROLLBACK,
        MongoTarget,
        OAuthTarget,
        PostgresTarget,
        RotationInput,
    )

from workflows.approver_checks import SpentProofs, spend
from workflows.secret_rotation import calls, decisions
from workflows.secret_rotation.governor import ask_governor
from workflows.secret_rotation.record import record_of
from workflows.secret_rotation.state import RotationRun
from workflows.secret_rotation.steps import Steps, failure_of


@workflow.defn(name=ROTATION_WORKFLOW)
class SecretRotationWorkflow:
    def __init__(self) -> None:
        self._run: RotationRun | None = None
        self._policy: Policy | None = None
        self._spent: SpentProofs = {}

    @workflow.run
    async def run(self, params: RotationInput) -> RotationResult:
        """Load the rotation → plan → Governor (and a human, if the policy says) → rotate → verify → record."""
        policy = self._policy = await calls.load_policy(params.cluster)
        rotation = policy.rotations.secrets.get(params.rotation)
        if rotation is None:
            raise ApplicationError(f"no rotation {params.rotation!r} in the policy's rotations.secrets",
                                   type="UnknownRotation", non_retryable=True)
        run = self._run = RotationRun(params, rotation, token=f"r{workflow.uuid4().hex[:12]}")
        steps = Steps(run, params.cluster)
        run.note("started", f"{params.action} requested by {params.requested_by}: {params.reason}"
                            f"{' (emergency)' if params.emergency else ''}", actor=params.requested_by)
        if params.action == "rollback":
            outcome = await self._manual_rollback(run, steps)
        else:
            outcome = await self._rotate(run, steps, policy, params.cluster)
        await calls.append_record(record_of(run), params.cluster)
        return RotationResult(rotation=params.rotation, token=run.token, outcome=outcome,
                              detail=run.log[-1].message if run.log else "")

    async def _rotate(self, run: RotationRun, steps: Steps, policy: Policy, cluster: str) -> RotationOutcome:
        await steps.clear_leftover(await steps.read())
        consumers = run.status.consumers = await steps.consumers()
        run.status.plan = _plan(run, consumers)
        decision = await ask_governor(run, policy, cluster)
        if decision.code == "observe":
            return run.end("planned", decision.reason)
        if decision.needs_approval:
            answered = await self._await_approval(run, policy)
            if answered is not None:
                return answered
            decision = await ask_governor(run, policy, cluster, approved=True)
        if run.interrupted:
            return run.end("aborted" if run.aborted_by else "taken_over", "a human stopped it before it began")
        if not decision.granted:
            return run.end("refused", decision.reason)
        outcome: RotationOutcome = "failed"
        try:
            outcome = await self._change(run, steps, consumers, cluster)
        except ActivityError as error:  # a step that kept failing: stop where it is, never revoke, tell someone
            why = failure_of(error)
            stage = run.status.stage
            await self._tell_incident(run, cluster, f"rotation of {run.params.rotation} failed at {stage}", why)
            outcome = run.end("failed", f"{why} (at stage {stage}; the old credential was not revoked)")
        finally:
            if decision.grant_id:
                await calls.report_outcome(OutcomeReport(grant_id=decision.grant_id, verified=outcome == "rotated",
                                                         detail=outcome), cluster)
        return outcome

    async def _change(self, run: RotationRun, steps: Steps, consumers: list[str], cluster: str) -> RotationOutcome:
        run.status.state = "rotating"
        await steps.do(names.CREATE_PENDING_CREDENTIAL, "pending")
        try:
            await steps.do(names.SET_PENDING_CREDENTIAL, "set")
            await steps.do(names.TEST_PENDING_CREDENTIAL, "tested")
        except ActivityError as error:
            why = failure_of(error)
            await steps.undo_before_finish(why)
            await self._tell_incident(run, cluster, f"rotation of {run.params.rotation} rolled back", why)
            return run.end("rolled_back", why)
        if run.interrupted:
            await steps.undo_before_finish(f"stopped by {run.rollback_by or run.aborted_by or run.status.owner}")
            return run.end("aborted", "stopped before the new credential became current")
        await steps.do(names.FINISH_ROTATION, "finished")
        run.status.state = "verifying"
        problem = await steps.move_consumers(consumers, run.token) or await steps.healthy_after_move()
        if problem is None and not run.interrupted:
            await steps.mark("moved", "consumers run on the new credential")
            unused = await steps.wait_unused()
            if unused is False:
                why = f"the old credential is still in use after {run.rotation.verify.unused_timeout}"
                await self._tell_incident(run, cluster, f"old credential of {run.params.rotation} not revoked", why)
                return run.end("revoke_held", why + "; it stays valid (never revoked on a timeout)")
            target = run.rotation.target
            if unused and isinstance(target, OAuthTarget):
                run.status.state = "grace"
                await _wait_or_interrupted(run, target.grace)
        if run.status.owner and run.rollback_by is None:
            return run.end("taken_over", f"{run.status.owner} owns it now; the old credential stays valid")
        if problem is not None or run.interrupted:
            why = problem or f"rollback asked by {run.rollback_by or run.aborted_by}"
            await steps.roll_back_after_finish(consumers, why)
            if problem is not None:
                await self._tell_incident(run, cluster, f"rotation of {run.params.rotation} rolled back", why)
            return run.end("rolled_back", why)
        await steps.do(names.REVOKE_PREVIOUS_CREDENTIAL)
        await steps.mark("revoked", "old credential revoked after the consumers moved", verified=True)
        return run.end("rotated", f"{run.rotation.secret.describe()} now holds version {run.token}")

    async def _manual_rollback(self, run: RotationRun, steps: Steps) -> RotationOutcome:
        view = await steps.read()
        if view.current is None or view.previous is None or view.previous_revoked \
                or view.current.version == layout.INITIAL:
            return run.end("failed", "nothing to roll back to: no previous credential that still works")
        run.status.consumers = await steps.consumers()
        await steps.roll_back_after_finish(run.status.consumers, run.params.reason, token=view.current.version)
        return run.end("rolled_back", f"{view.previous.version} is current again")

    async def _await_approval(self, run: RotationRun, policy: Policy) -> RotationOutcome | None:
        """None once approved; otherwise how the wait ended (nothing was changed)."""
        timeout = run.rotation.approval_timeout
        if run.params.emergency:
            timeout = min(timeout, policy.approvals.expiry_for("P1"))
        run.ask_approval(run.status.plan, workflow.now() + timeout)
        await _wait_or_interrupted(run, timeout, done=lambda: run.answered)
        if run.aborted_by:
            return run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
        if run.status.owner:
            return run.end("taken_over", f"taken over by {run.status.owner} before anything changed")
        if not run.answered:
            return run.end("not_approved", f"no approval within {timeout}; nothing was done")
        return None

    async def _tell_incident(self, run: RotationRun, cluster: str, summary: str, evidence: str) -> None:
        assert self._policy is not None
        event = rotation_event(run.params.rotation, run.rotation, summary=summary, evidence=evidence,
                               at=workflow.now())
        incident_id = incident_for(event, self._policy.group_by, cluster)
        await calls.tell_incident(incident_id, event, cluster)
        run.note("incident", f"incident {incident_id} opened: {summary}")

    # --- steering: updates with validators that refuse without touching anything ---------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> RotationStatus | None:
        return self._run.status if self._run else None

    @workflow.update(name=UPDATE_APPROVE)
    def approve(self, decision: ApproveInput) -> str:
        accepted = decisions.check_approve(self._run, self._policy, decision, self._spent)
        assert self._run is not None
        self._run.approve(decision.by, decision.note, decision.proof, spend(self._spent, accepted))
        return f"approved by {decision.by}"

    @approve.validator
    def _check_approve(self, decision: ApproveInput) -> None:
        decisions.check_approve(self._run, self._policy, decision, self._spent)

    @workflow.update(name=UPDATE_ABORT)
    def abort(self, decision: AbortInput) -> str:
        decisions.check_abort(self._run)
        assert self._run is not None
        self._run.abort(decision.by, decision.reason)
        return f"aborted by {decision.by}"

    @abort.validator
    def _check_abort(self, decision: AbortInput) -> None:
        decisions.check_abort(self._run)

    @workflow.update(name=UPDATE_TAKE_OVER)
    def take_over(self, decision: TakeOverInput) -> str:
        decisions.check_take_over(self._run, decision)
        assert self._run is not None
        self._run.take_over(decision.by, decision.note)
        return f"taken over by {decision.by}"

    @take_over.validator
    def _check_take_over(self, decision: TakeOverInput) -> None:
        decisions.check_take_over(self._run, decision)

    @workflow.update(name=UPDATE_ROLLBACK)
    def rollback(self, decision: RollbackInput) -> str:
        decisions.check_rollback(self._run, decision)
        assert self._run is not None
        self._run.request_rollback(decision.by, decision.reason)
        return f"rollback requested by {decision.by}"

    @rollback.validator
    def _check_rollback(self, decision: RollbackInput) -> None:
        decisions.check_rollback(self._run, decision)


async def _wait_or_interrupted(run: RotationRun, timeout: timedelta,
                               done: Callable[[], bool] | None = None) -> None:
    """Sleep on a durable timer until ``timeout``, ``done``, or a human stepping in."""
    with contextlib.suppress(TimeoutError):
        await workflow.wait_condition(lambda: (done is not None and done()) or run.interrupted, timeout=timeout)


def _plan(run: RotationRun, consumers: list[str]) -> list[str]:
    """What the approver approves: what changes where, which workloads restart."""
    target, secret = run.rotation.target, run.rotation.secret
    lines = [f"generate a new {target.kind} credential ({target.generated.length} characters) for "
             f"{run.params.rotation}", f"store it as pending in Secret {secret.describe()}"]
    if isinstance(target, PostgresTarget):
        lines.append(f"PostgreSQL ({target.strategy}, connection {target.connection}): set it on one of "
                     f"{', '.join(target.roles)}, test a login, revoke the old login (NOLOGIN) once unused")
    elif isinstance(target, MongoTarget):
        lines.append(f"MongoDB ({target.strategy}): updateUser/createUser on one of {', '.join(target.users)}")
    elif isinstance(target, OAuthTarget):
        lines.append(f"issue a second client secret for {target.client_id}; revoke the old one "
                     f"{target.grace} after the consumers moved")
    lines.append(f"restart {', '.join(consumers)} onto it" if consumers else "no Deployment reads this Secret")
    return lines
