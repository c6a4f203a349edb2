"""Who may steer a failover: the checks behind its approve and abort updates, and the plan they decide on.

Each check raises ApplicationError and touches nothing. Approving loosens (the old primary is
stopped, a replica promoted, data rewound): an approver other than the requester, with a signed
proof bound to this step's request when the policy verifies approvers. Abort only stops.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import approval_proofs
    from zerotouch.approval_proofs import Accepted
    from zerotouch.models import ApproveInput
    from zerotouch.policy import Policy
    from zerotouch.recovery_databases import ConnectionFileRepoint, DatabaseFailoverTarget

from workflows.approver_checks import SpentProofs, require_approver, require_proof
from workflows.db_failover.state import FailoverRun


def require_running(run: FailoverRun | None) -> FailoverRun:
    if run is None:
        raise ApplicationError("the failover is still starting; try again in a moment", type="NotStarted")
    if run.over:
        raise ApplicationError(f"the failover of {run.params.database} is over ({run.status.stage})",
                               type="RecoveryOver")
    return run


def check_approve(run: FailoverRun | None, policy: Policy | None, decision: ApproveInput,
                  spent: SpentProofs) -> Accepted | None:
    run = require_running(run)
    pending = run.pending
    if pending is None:
        raise ApplicationError(f"nothing awaits approval in the failover of {run.params.database}",
                               type="NothingToApprove")
    if workflow.now() >= pending.expires_at:
        raise ApplicationError(f"the approval request expired at {pending.expires_at.isoformat(timespec='seconds')}"
                               " and nothing was done; start the failover again to ask again", type="ApprovalExpired")
    policy = require_approver(policy, decision.by)
    if policy.four_eyes and decision.by == run.params.requested_by:
        raise ApplicationError(f"{decision.by!r} requested this failover and may not approve it; another approver "
                               "must", type="SelfApproval")
    return require_proof(policy, decision.by, decision.proof, approval_proofs.APPROVE, pending.request_id, spent)


def check_abort(run: FailoverRun | None) -> None:
    require_running(run)


def promote_plan(name: str, target: DatabaseFailoverTarget) -> list[str]:
    """What the approver of the promotion approves, in order."""
    old, new = target.primary, target.replica
    lines = [f"fence the old primary {old.describe()}: pg_ctl stop -m fast on {old.data_directory or '?'}, "
             "confirmed stopped (pg_ctl status and a refused connection), standby.signal left against a restart",
             f"promote the replica {new.describe()} (pg_promote), only if its lag is at most "
             f"{target.max_lag_bytes} bytes",
             *(f"repoint {_repoint(spec)} to {new.describe()}" for spec in target.repoint),
             f"verify a write on {new.describe()}"
             + (f" and that canary {target.canary.table} has no gap over {target.canary.max_gap}"
                if target.canary.table else "")]
    if target.rejoin == "pg_rewind":
        lines.append(f"then (approved separately{'' if target.approvals.rejoin else ': pre-approved'}) pg_rewind "
                     f"the old primary from {new.describe()} and start it as its standby")
    else:
        lines.append(f"leave the old primary fenced for a human ({name}: rejoin none)")
    return lines


def rejoin_plan(target: DatabaseFailoverTarget) -> list[str]:
    old, new = target.primary, target.replica
    return [f"pg_rewind {old.data_directory} (overwrites what the old primary wrote after the fork) from "
            f"{new.describe()}", f"start {old.describe()} as a standby of {new.describe()} and wait until it streams"]


def _repoint(spec: object) -> str:
    if isinstance(spec, ConnectionFileRepoint):
        return f"connection file {spec.path}"
    return str(getattr(spec, "describe", lambda: spec)())
