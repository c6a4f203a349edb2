"""Asking the cluster's Governor before a node recovery changes anything: the grant, then the node lease.

The grant is the one every operation takes (kill switch, observe mode, rate, blast radius, the policy's
risk for `node_drain`); a refusal that passes by itself is waited out a bounded number of times. The
lease is the capacity budget: the Governor refuses it when the cordon would leave too few schedulable
nodes or too many node actions at once. The holder renews it while it holds the node.
"""

from __future__ import annotations

import contextlib

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.node_lease_models import NodeLeaseDecision, NodeLeaseRenewal, NodeLeaseRequest
    from zerotouch.node_recovery_models import GRANT_ACTION, NODES_SCOPE, RISK_CLASS, NodeView
    from zerotouch.policy import Policy

from workflows.grant_waits import until_settled
from workflows.node_recovery import calls
from workflows.node_recovery.state import NodeRun

RUNBOOK = "node-recovery"
_MAX_ASKS = 60


async def ask_grant(run: NodeRun, policy: Policy, *, approved: bool = False) -> GrantDecision:
    """The Governor's answer for the cordon and drain; waits out refusals that pass by themselves."""
    async def ask(n: int) -> GrantDecision:
        request = GrantRequest(
            request_id=f"{run.workflow_id}-{workflow.info().run_id[:8]}-{'approved' if approved else 'ask'}-{n}",
            incident_id=run.workflow_id, runbook=RUNBOOK, alert_class=run.params.reason or "NodeRecovery",
            action=GRANT_ACTION, namespace=NODES_SCOPE, target=f"node/{run.params.node}", risk_class=RISK_CLASS,
            risk=policy.risk.get(RISK_CLASS, "auto"), labels={"node": run.params.node},
            approved_by=run.approved_by or None if approved else None, approval_note=run.approval_note,
            approval_proof=run.approval_proof if approved else None,
        )
        return await calls.request_grant(request, governor_settings(policy), run.params.cluster)

    return await until_settled(ask, max_asks=_MAX_ASKS, aborted=lambda: bool(run.aborted_by),
                               waiting=lambda d: run.note("governor", "waiting", d.reason))


async def ask_lease(run: NodeRun, policy: Policy, view: NodeView, *, probe: bool = False) -> NodeLeaseDecision:
    request = NodeLeaseRequest(node=run.params.node, holder=run.workflow_id, total_nodes=view.total_nodes,
                               schedulable=view.schedulable, probe=probe)
    return await calls.request_lease(request, governor_settings(policy), run.params.cluster)


async def keep_lease(run: NodeRun) -> None:
    """Renew the lease every third of its life until the run lets it go (a background task of the run)."""
    renewal = NodeLeaseRenewal(node=run.params.node, holder=run.workflow_id)
    while run.lease_held:
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: not run.lease_held, timeout=run.policy.lease_renew_every())
        if run.lease_held:
            # A renewal that cannot be delivered (the Governor restarting) is one missed heartbeat of
            # three in a TTL; the lease is kept by the next one, or lapses as it should.
            with contextlib.suppress(Exception):
                await calls.renew_lease(renewal, run.params.cluster)


async def give_back(run: NodeRun) -> None:
    if run.lease_held:
        run.lease_held = False
        await calls.release_lease(NodeLeaseRenewal(node=run.params.node, holder=run.workflow_id), run.params.cluster)
        run.note("lease", "ok", "node lease released")
