"""NamespaceRestoreWorkflow: a namespace's objects back from their backup, diffed first, approved before overwriting.

Read the backup (the named one, else the newest verified) → diff it against the destination →
(dry run: stop, nothing changed) → a human approves whenever anything would be overwritten (a
timeout aborts, never approves) → the Governor grants → create what is missing, replace what
differs (guarded by what the approver saw) → verify the objects match and Deployments rolled out
→ the ledger records each object's digest before and after. Objects only in the destination are
left alone. Refusals and failures open an incident.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import GrantDecision, OutcomeReport
    from zerotouch.models import AbortInput, ApproveInput
    from zerotouch.names import UPDATE_ABORT, UPDATE_APPROVE
    from zerotouch.namespace_restore_alerts import incident_for, restore_event
    from zerotouch.namespace_restore_models import (
        NamespaceRestoreRecord,
        ObjectChange,
        RestoreApply,
        RestoreCheck,
        RestoreSource,
    )
    from zerotouch.policy import Policy
    from zerotouch.recovery import (
        NAMESPACE_RESTORE_WORKFLOW,
        QUERY_RECOVERY_STATUS,
        NamespaceRestoreInput,
        RecoveryStatus,
    )

from workflows.approver_checks import SpentProofs, spend
from workflows.namespace_restore import calls, decisions
from workflows.namespace_restore.governor import ask_governor
from workflows.namespace_restore.state import RestoreRun
from workflows.secret_rotation.steps import failure_of


@workflow.defn(name=NAMESPACE_RESTORE_WORKFLOW)
class NamespaceRestoreWorkflow:
    def __init__(self) -> None:
        self._run: RestoreRun | None = None
        self._policy: Policy | None = None
        self._spent: SpentProofs = {}

    @workflow.run
    async def run(self, params: NamespaceRestoreInput) -> RecoveryStatus:
        """Plan → (dry run ends) → approval if anything is overwritten → Governor → apply → verify → record."""
        policy = self._policy = await calls.load_policy(params.cluster)
        run = self._run = RestoreRun(params, params.into_namespace or params.namespace,
                                     token=f"n{workflow.uuid4().hex[:12]}")
        run.note("started", "ok", run.status.reason)
        try:
            await self._restore(run, policy, params.cluster)
        except ActivityError as error:  # a step that kept failing, or a refusal an activity raised
            run.end("failed", failure_of(error))
        if not params.dry_run:
            if run.status.stage in ("failed", "refused"):
                await self._tell_incident(run, policy, params.cluster)
            await calls.append_record(_record(run), params.cluster)
        return run.status

    async def _restore(self, run: RestoreRun, policy: Policy, cluster: str) -> None:
        params, settings = run.params, policy.recovery.namespaces
        try:
            target = policy.backups.target(params.backup_target)
        except KeyError as error:
            run.end("refused", str(error.args[0]))
            return
        if target.engine != "kubernetes" or params.namespace not in target.namespaces:
            run.end("refused", f"backup target {target.name} does not back up the objects of namespace "
                               f"{params.namespace} (it holds {', '.join(target.namespaces) or target.engine})")
            return
        source = RestoreSource(repository=policy.backups.repository, backup_target=target.name,
                               backup_id=params.backup_id, namespace=params.namespace, into=run.into,
                               max_objects=settings.max_objects)
        plan = await calls.plan(source, cluster)
        run.planned(plan)
        refusal = settings.refusal(run.into, exists=plan.destination_exists)
        if refusal:
            run.end("refused", refusal)
            return
        if params.dry_run:
            run.end("planned", f"dry run: {len(plan.creates)} to create, {len(plan.overwrites)} to overwrite; "
                               "nothing changed")
            return
        if not plan.creates and not plan.overwrites:
            run.end("recovered", f"{run.into} already matches backup {plan.backup_id}; nothing written")
            return
        decision: GrantDecision | None = None
        if not plan.overwrites and not settings.approve_fresh:
            decision = await ask_governor(run, policy, cluster)
        if decision is None or decision.needs_approval:
            if not await self._approved(run, settings.approval_timeout):
                return
            decision = await ask_governor(run, policy, cluster, approved=True)
        if run.aborted_by:
            run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
        elif decision.code == "observe":
            run.end("planned", f"{decision.reason}")
        elif not decision.granted:
            run.end("refused", decision.reason)
        else:
            await self._apply(run, source.model_copy(update={"backup_id": plan.backup_id}),
                              [c for c in plan.changes if c.action != "unchanged"],
                              not plan.destination_exists, decision, settings.rollout_timeout, cluster)

    async def _apply(self, run: RestoreRun, source: RestoreSource, changes: list[ObjectChange], create_namespace: bool,
                     decision: GrantDecision, rollout_timeout: timedelta, cluster: str) -> None:
        verified = False
        try:
            run.applying = True
            run.stage("running", f"granted ({decision.grant_id}); writing {len(changes)} objects")
            applied = await calls.apply(RestoreApply(source=source, changes=changes, create_namespace=create_namespace,
                                                     token=run.token), cluster)
            run.note("apply", "ok", f"created {len(applied.created)}, replaced {len(applied.replaced)}, "
                                    f"already in place {len(applied.already)}")
            check = await calls.verify(RestoreCheck(source=source, changes=changes,
                                                    timeout_seconds=rollout_timeout.total_seconds()), cluster)
            run.after = check.digests
            verified = check.ok
            if check.ok:
                run.end("recovered", f"{len(changes)} objects of {run.into} match backup {source.backup_id}; "
                                     "Deployments available")
            else:
                run.end("failed", f"written but not verified: {'; '.join(check.problems[:5])}")
        finally:
            if decision.grant_id:
                await calls.report_outcome(OutcomeReport(grant_id=decision.grant_id, verified=verified,
                                                         detail=run.status.stage), cluster)

    async def _approved(self, run: RestoreRun, timeout: timedelta) -> bool:
        """True once approved; otherwise the run ended aborted (by a human, or because nobody answered)."""
        run.ask_approval(workflow.now() + timeout)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: run.answered, timeout=timeout)
        if run.aborted_by:
            run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
            return False
        if not run.approved_by:
            run.status.approval = "timed out"
            run.end("aborted", f"no approval within {timeout}; nothing was changed")
            return False
        return True

    async def _tell_incident(self, run: RestoreRun, policy: Policy, cluster: str) -> None:
        event = restore_event(run.into, summary=f"namespace restore into {run.into} {run.status.stage}",
                              evidence=run.status.outcome, at=workflow.now())
        incident_id = incident_for(event, policy.group_by, cluster)
        await calls.tell_incident(incident_id, event, cluster)
        run.status.incident_id = incident_id
        run.note("incident", "ok", f"incident {incident_id} opened")

    # --- watching and steering: updates with validators that refuse without touching anything ------------

    @workflow.query(name=QUERY_RECOVERY_STATUS)
    def recovery_status(self) -> RecoveryStatus | None:
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


def _record(run: RestoreRun) -> NamespaceRestoreRecord:
    info, params = workflow.info(), run.params
    return NamespaceRestoreRecord(
        workflow_id=info.workflow_id, run_id=info.run_id, cluster=params.cluster, namespace=params.namespace,
        into=run.into, backup_target=params.backup_target, backup_id=run.backup_id, dry_run=params.dry_run,
        stage=run.status.stage, outcome=run.status.outcome, requested_by=params.requested_by,
        approval=run.status.approval, started_at=run.started_at, finished_at=workflow.now(),
        before=run.before, after=run.after,
        steps=[f"{e.at.isoformat(timespec='seconds')} {e.step} [{e.outcome}] {e.detail}" for e in run.log])
