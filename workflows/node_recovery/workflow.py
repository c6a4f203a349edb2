"""NodeRecoveryWorkflow: drain a failed node by eviction, have it rebooted or replaced, put it back in service.

One workflow per node (`recovery_id("node", cluster, node)`), so two recoveries of a node never overlap.
Governor grant (and a human, if the policy says) → node lease (the capacity budget) → cordon, naming
this workflow on the node → evict every pod but the DaemonSets' through the Eviction API → wait until
their workloads run healthy elsewhere → the provider reboots or replaces the node → wait Ready →
uncordon → release the lease. Every cordon has its compensation: a failure, an abort or a cancel after
it uncordons, or (the node still NotReady) escalates saying the node stays cordoned, owned by this ID.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import OutcomeReport
    from zerotouch.k8s_names import InvalidName, require_object_name
    from zerotouch.models import AbortInput, ApproveInput
    from zerotouch.names import UPDATE_ABORT, UPDATE_APPROVE
    from zerotouch.node_recovery_alerts import incident_for, node_event
    from zerotouch.node_recovery_models import (
        CordonRequest,
        DrainRequest,
        NodeReadyWait,
        NodeRecoveryRecord,
        NodeView,
        ProviderCall,
        WorkloadWait,
    )
    from zerotouch.policy import Policy
    from zerotouch.recovery import (
        NODE_RECOVERY_WORKFLOW,
        QUERY_RECOVERY_STATUS,
        NodeRecoveryInput,
        RecoveryStatus,
        recovery_id,
    )

from workflows.approver_checks import SpentProofs, spend
from workflows.node_recovery import calls, decisions
from workflows.node_recovery.governor import ask_grant, ask_lease, give_back, keep_lease
from workflows.node_recovery.plan import plan_lines, workloads_of
from workflows.node_recovery.state import NodeRun


class StepFailed(Exception):
    """A step ended without doing its job (drain incomplete, workloads not healthy, node not Ready)."""


@workflow.defn(name=NODE_RECOVERY_WORKFLOW)
class NodeRecoveryWorkflow:
    def __init__(self) -> None:
        self._run: NodeRun | None = None
        self._policy: Policy | None = None
        self._spent: SpentProofs = {}

    @workflow.run
    async def run(self, params: NodeRecoveryInput) -> RecoveryStatus:
        """Plan → Governor (grant, a human if asked, lease) → cordon → drain → provider → Ready → uncordon."""
        try:
            require_object_name(params.node, "node")
        except InvalidName as error:
            raise ApplicationError(str(error), type="InvalidTarget", non_retryable=True) from None
        policy = self._policy = await calls.load_policy(params.cluster)
        run = self._run = NodeRun(params, policy.recovery.nodes)
        run.note("started", "ok", f"requested by {params.requested_by or '-'}: {params.reason or 'no reason given'}")
        try:
            status = await self._recover(run, policy)
        except asyncio.CancelledError:
            await calls.append_record(_record(run), params.cluster)  # the compensation is on record too
            raise
        await calls.append_record(_record(run), params.cluster)
        return status

    async def _recover(self, run: NodeRun, policy: Policy) -> RecoveryStatus:
        view = await calls.read_node(run.params.node, run.params.cluster)
        run.before = view.state()
        if not view.exists:
            return await self._refuse(run, f"there is no node {run.params.node} in the cluster")
        if view.unschedulable and view.owner != run.workflow_id:
            return await self._refuse(run, f"node {view.node} is already cordoned by "
                                           f"{view.owner or 'someone (no owner annotation)'}; zerotouch leaves it")
        # A dry run runs under an ID of its own: the plan names the owner the real recovery would write.
        run.status.plan = plan_lines(view, run.policy, recovery_id("node", run.params.cluster, run.params.node))
        if run.params.dry_run:
            lease = await ask_lease(run, policy, view, probe=True)
            run.status.plan.append(f"capacity budget {'allows' if lease.granted else 'refuses'}: {lease.reason}")
            return run.end("planned", "dry run: nothing was changed")
        decision = await ask_grant(run, policy)
        if decision.code == "observe":
            return run.end("planned", decision.reason)
        if decision.needs_approval or run.policy.approval == "approval":
            answered = await self._await_approval(run)
            if answered is not None:
                return answered
            decision = await ask_grant(run, policy, approved=True)
        if run.aborted_by:
            return run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
        if not decision.granted:
            return await self._refuse(run, f"the Governor refused: {decision.reason}")
        run.note("grant", "ok", decision.reason)
        status = run.status
        try:
            status = await self._under_lease(run, policy, view)
        finally:
            if decision.grant_id:
                await calls.report_outcome(OutcomeReport(grant_id=decision.grant_id,
                                                         verified=status.stage == "recovered",
                                                         executed=status.stage != "refused",
                                                         detail=status.outcome), run.params.cluster)
        return status

    async def _under_lease(self, run: NodeRun, policy: Policy, view: NodeView) -> RecoveryStatus:
        lease = await ask_lease(run, policy, view)
        if not lease.granted:
            return await self._refuse(run, f"capacity budget: {lease.reason}")
        run.lease_held = True
        run.note("lease", "ok", lease.reason)
        keeper = asyncio.create_task(keep_lease(run))
        try:
            return await self._act(run, view)
        except (ActivityError, StepFailed) as error:
            why = str(error.cause or error) if isinstance(error, ActivityError) else str(error)
            kept = await self._compensate(run, why)
            if run.aborted_by:
                return run.end("aborted", f"aborted by {run.aborted_by}; {kept}")
            return await self._escalated(run, "failed", f"node recovery of {run.params.node} failed",
                                         f"{why}; {kept}")
        except asyncio.CancelledError:
            kept = await self._compensate(run, "the recovery was cancelled")
            await self._escalate(run, f"node recovery of {run.params.node} cancelled", kept)
            run.end("aborted", f"cancelled; {kept}")
            raise
        finally:
            await give_back(run)
            keeper.cancel()

    async def _act(self, run: NodeRun, view: NodeView) -> RecoveryStatus:
        node, cluster, nodes = run.params.node, run.params.cluster, run.policy
        run.stage("running")
        change = await calls.cordon(CordonRequest(node=node, owner=run.workflow_id, cordon=True), cluster)
        run.cordoned = True
        run.note("cordon", "ok", f"{change.detail}: {change.before} → {change.after}")
        self._check_abort(run)
        drained = await calls.drain(DrainRequest(node=node, owner=run.workflow_id,
                                                 deadline=workflow.now() + nodes.drain_timeout,
                                                 retry_seconds=nodes.eviction_retry.total_seconds()),
                                    cluster, nodes.drain_timeout)
        run.note("drain", "ok" if drained.drained else "failed",
                 f"{drained.detail}; {drained.refusals} PDB refusal(s) waited out")
        if not drained.drained:
            raise StepFailed(f"drain incomplete after {nodes.drain_timeout}: {', '.join(drained.remaining)} "
                             f"still on the node ({drained.refused_by or 'no PDB refusal'})")
        self._check_abort(run)
        health = await calls.wait_for_workloads(WorkloadWait(node=node, workloads=workloads_of(view),
                                                             deadline=workflow.now() + nodes.healthy_timeout),
                                                cluster, nodes.healthy_timeout)
        run.note("reschedule", "ok" if health.healthy else "failed", health.detail)
        if not health.healthy:
            raise StepFailed(health.detail)
        self._check_abort(run)
        if nodes.provider == "none":
            await self._escalate(run, f"node {node} drained: repair or replace it",
                                 f"no node provider is configured; {node} stays cordoned (owned by "
                                 f"{run.workflow_id}) until it is Ready again, then zerotouch uncordons it")
        else:
            ack = await calls.restart_node(ProviderCall(node=node, action=nodes.action,
                                                        delay_seconds=nodes.provider_delay.total_seconds(),
                                                        key=f"{run.workflow_id}/{workflow.info().run_id}"), cluster)
            run.note("provider", "ok", ack.detail)
        ready = await calls.wait_for_ready(NodeReadyWait(node=node, deadline=workflow.now() + nodes.ready_timeout),
                                           cluster, nodes.ready_timeout)
        run.note("ready", "ok" if ready.ready else "failed", ready.detail)
        if not ready.ready:
            raise StepFailed(ready.detail)
        await self._uncordon(run)
        run.after = (await calls.read_node(node, cluster)).state()
        return run.end("recovered", f"node {node} drained, {nodes.action if nodes.provider != 'none' else 'repaired'}"
                                    f", Ready and schedulable again")

    def _check_abort(self, run: NodeRun) -> None:
        if run.aborted_by:
            raise StepFailed(f"aborted by {run.aborted_by}")

    async def _uncordon(self, run: NodeRun) -> None:
        change = await calls.cordon(CordonRequest(node=run.params.node, owner=run.workflow_id, cordon=False),
                                    run.params.cluster)
        run.cordoned = False
        run.note("uncordon", "ok", f"{change.detail}: {change.before} → {change.after}")

    async def _compensate(self, run: NodeRun, why: str) -> str:
        """Undo the cordon, unless the node is still NotReady: then it stays cordoned and says whose it is."""
        if not run.cordoned:
            return "the node was not cordoned"
        view = await calls.read_node(run.params.node, run.params.cluster)
        run.after = view.state()
        if view.ready or run.aborted_by:
            await self._uncordon(run)
            run.after = (await calls.read_node(run.params.node, run.params.cluster)).state()
            return f"{run.params.node} was uncordoned"
        run.note("compensate", "skipped", f"{run.params.node} is not Ready: it stays cordoned ({why})")
        return f"{run.params.node} stays cordoned, owned by {run.workflow_id} (it is not Ready)"

    async def _await_approval(self, run: NodeRun) -> RecoveryStatus | None:
        """None once approved; otherwise how the wait ended (nothing was changed)."""
        run.stage("awaiting_approval")
        run.status.approval, run.awaiting = "pending", True
        run.status.approval_request = decisions.request_id(run)  # what `recovery approve` signs
        run.note("approval", "waiting", f"approve or abort within {run.policy.approval_timeout}")
        try:
            await workflow.wait_condition(lambda: not run.awaiting, timeout=run.policy.approval_timeout)
        except TimeoutError:
            run.status.approval = "timed out"
            return run.end("aborted", f"no approval within {run.policy.approval_timeout}; nothing was done")
        if run.aborted_by:
            return run.end("aborted", f"aborted by {run.aborted_by} before anything changed")
        return None

    async def _refuse(self, run: NodeRun, why: str) -> RecoveryStatus:
        if run.params.dry_run:  # a plan that would be refused says so; it pages nobody
            return run.end("refused", f"dry run: {why}")
        return await self._escalated(run, "refused", f"node {run.params.node} not recovered", why)

    async def _escalated(self, run: NodeRun, stage: str, summary: str, why: str) -> RecoveryStatus:
        await self._escalate(run, summary, why)
        return run.end("refused" if stage == "refused" else "failed", why)

    async def _escalate(self, run: NodeRun, summary: str, evidence: str) -> None:
        assert self._policy is not None
        event = node_event(run.params.node, run.workflow_id, summary=summary, evidence=evidence, at=workflow.now())
        incident_id = incident_for(event, self._policy.group_by, run.params.cluster)
        await calls.tell_incident(incident_id, event, run.params.cluster)
        run.status.incident_id = incident_id
        run.note("escalate", "ok", f"incident {incident_id}: {summary}: {evidence}")

    # --- steering: updates with validators that refuse without touching anything ---------------------

    @workflow.query(name=QUERY_RECOVERY_STATUS)
    def status(self) -> RecoveryStatus | None:
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
    def _check_abort_update(self, decision: AbortInput) -> None:
        decisions.check_abort(self._run)


def _record(run: NodeRun) -> NodeRecoveryRecord:
    return NodeRecoveryRecord(
        workflow_id=run.workflow_id, run_id=workflow.info().run_id, cluster=run.params.cluster, node=run.params.node,
        stage=run.status.stage, reason=run.params.reason, requested_by=run.params.requested_by,
        approval=run.status.approval, incident_id=run.status.incident_id, plan=run.status.plan,
        timeline=run.events, before=run.before, after=run.after, outcome=run.status.outcome,
        finished_at=workflow.now(),
    )

