"""Who may steer a namespace restore: the checks behind its approve and abort updates.

Each check raises ApplicationError and touches nothing, so a refused update changes nothing.
Approving loosens (objects are overwritten): it needs an approver other than the requester and,
when the policy verifies approvers, a signed proof bound to this restore's request. Abort only
stops, so anyone may, until the writes begin.
"""

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
from workflows.namespace_restore.state import RestoreRun


def require_running(run: RestoreRun | None) -> RestoreRun:
    if run is None:
        raise ApplicationError("the restore is still starting; try again in a moment", type="NotStarted")
    if run.status.stage in FINAL_STAGES:
        raise ApplicationError(f"the restore of {run.into} is over ({run.status.stage}: {run.status.outcome})",
                               type="RecoveryOver")
    return run


def check_approve(run: RestoreRun | None, policy: Policy | None, decision: ApproveInput,
                  spent: SpentProofs) -> Accepted | None:
    run = require_running(run)
    if not run.pending or run.expires_at is None:
        raise ApplicationError(f"nothing awaits approval on the restore of {run.into}", type="NothingToApprove")
    if workflow.now() >= run.expires_at:
        raise ApplicationError(f"the approval request expired at {run.expires_at.isoformat(timespec='seconds')} "
                               "and nothing was done; start the restore again to ask again", type="ApprovalExpired")
    policy = require_approver(policy, decision.by)
    if policy.four_eyes and decision.by == run.params.requested_by:
        raise ApplicationError(f"{decision.by!r} requested this restore and may not approve it; another approver "
                               "must", type="SelfApproval")
    return require_proof(policy, decision.by, decision.proof, approval_proofs.APPROVE, run.request_id, spent)


def check_abort(run: RestoreRun | None) -> None:
    run = require_running(run)
    if run.applying:
        raise ApplicationError(f"the restore of {run.into} is already writing; it cannot be stopped half-way",
                               type="AlreadyApplying")
    if run.aborted_by:
        raise ApplicationError(f"{run.aborted_by!r} already aborted it", type="AlreadyAborted")
