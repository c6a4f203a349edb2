"""Who may steer a rotation: the checks behind its approve, abort, take-over and rollback updates.

Each check raises ApplicationError and touches nothing, so a refused update changes nothing.
Approving loosens (a credential changes and consumers restart): it needs an approver other than
the requester and, when the policy verifies approvers, a signed proof bound to this rotation's
request. Abort, take over and rollback only stop or go back to the last known good credential.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import approval_proofs
    from zerotouch.approval_proofs import Accepted
    from zerotouch.models import ApproveInput, TakeOverInput
    from zerotouch.policy import Policy
    from zerotouch.rotation_models import RollbackInput

from workflows.approver_checks import SpentProofs, require_approver, require_proof
from workflows.secret_rotation.state import RotationRun


def require_running(run: RotationRun | None) -> RotationRun:
    if run is None:
        raise ApplicationError("the rotation is still starting; try again in a moment", type="NotStarted")
    if run.status.state == "done":
        raise ApplicationError(f"rotation {run.token} of {run.status.rotation} is over ({run.status.outcome})",
                               type="RotationOver")
    return run


def check_approve(run: RotationRun | None, policy: Policy | None, decision: ApproveInput,
                  spent: SpentProofs) -> Accepted | None:
    run = require_running(run)
    pending = run.status.pending_approval
    if pending is None:
        raise ApplicationError(f"nothing awaits approval on rotation {run.token}", type="NothingToApprove")
    if workflow.now() >= pending.expires_at:
        raise ApplicationError(f"the approval request expired at {pending.expires_at.isoformat(timespec='seconds')} "
                               "and nothing was done; rotate again to ask again", type="ApprovalExpired")
    policy = require_approver(policy, decision.by)
    if policy.four_eyes and decision.by == pending.requested_by:
        raise ApplicationError(f"{decision.by!r} requested this rotation and may not approve it; another approver "
                               "must", type="SelfApproval")
    return require_proof(policy, decision.by, decision.proof, approval_proofs.APPROVE, pending.request_id, spent)


def check_abort(run: RotationRun | None) -> None:
    run = require_running(run)
    if run.status.stage == "revoked":
        raise ApplicationError("the old credential is already revoked; nothing to abort", type="RotationOver")


def check_take_over(run: RotationRun | None, decision: TakeOverInput) -> None:
    run = require_running(run)
    if run.status.owner:
        raise ApplicationError(f"{run.status.owner!r} already owns this rotation", type="AlreadyOwned")


def check_rollback(run: RotationRun | None, decision: RollbackInput) -> None:
    run = require_running(run)
    if run.rollback_by is not None:
        raise ApplicationError(f"{run.rollback_by!r} already asked for a rollback", type="AlreadyRollingBack")
    if run.status.stage == "idle":
        raise ApplicationError("nothing has changed yet, so there is nothing to roll back; abort it instead",
                               type="NothingToRollBack")
    if run.status.stage == "revoked":
        raise ApplicationError("the old credential is revoked; rotate again instead of rolling back",
                               type="PreviousRevoked")
