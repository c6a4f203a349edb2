"""Who may steer a node recovery: the checks behind its approve and abort updates (they touch nothing)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import approval_proofs
    from zerotouch.approval_proofs import Accepted
    from zerotouch.models import ApproveInput
    from zerotouch.policy import Policy
    from zerotouch.recovery import FINAL_STAGES

from workflows.approver_checks import SpentProofs, require_approver, require_proof
from workflows.node_recovery.state import NodeRun


def require_running(run: NodeRun | None) -> NodeRun:
    if run is None:
        raise ApplicationError("the node recovery is still starting; try again in a moment", type="NotStarted")
    if run.status.stage in FINAL_STAGES:
        raise ApplicationError(f"the recovery of node {run.params.node} is over ({run.status.stage})",
                               type="RecoveryOver")
    return run


def check_approve(run: NodeRun | None, policy: Policy | None, decision: ApproveInput,
                  spent: SpentProofs) -> Accepted | None:
    run = require_running(run)
    if not run.awaiting:
        raise ApplicationError(f"nothing awaits approval on the recovery of node {run.params.node}",
                               type="NothingToApprove")
    policy = require_approver(policy, decision.by)
    if policy.four_eyes and decision.by == run.params.requested_by:
        raise ApplicationError(f"{decision.by!r} requested this recovery and may not approve it; another approver "
                               "must", type="SelfApproval")
    return require_proof(policy, decision.by, decision.proof, approval_proofs.APPROVE, request_id(run), spent)


def check_abort(run: NodeRun | None) -> None:
    run = require_running(run)
    if run.aborted_by:
        raise ApplicationError(f"{run.aborted_by!r} already aborted it", type="AlreadyAborted")


def request_id(run: NodeRun) -> str:
    """What an approval proof signs: this recovery of this node."""
    return f"recover-node-{run.params.node}"
