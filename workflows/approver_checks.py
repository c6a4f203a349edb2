"""Who may loosen what, and with what proof: the checks every operation's human decisions share.

Each check raises ApplicationError (an update is refused, a signal is noted and dropped) and
touches nothing. Loosening decisions (approve, retry, rotate) need an approver from the policy
and, when the policy verifies approvers, a proof signed by that approver's key
(`zerotouch.approval_proofs`); tightening ones (abort, take over) need neither, by design.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import approval_proofs
    from zerotouch.approval_proofs import Accepted, ApprovalProof
    from zerotouch.policy import Policy

SpentProofs = dict[str, datetime]


def require_approver(policy: Policy | None, by: str) -> Policy:
    if policy is None or not policy.approvers.allows(by):
        raise ApplicationError(f"{by!r} is not an approver in the policy; ask one of its approvers",
                               type="NotAnApprover")
    return policy


def require_proof(policy: Policy, by: str, proof: ApprovalProof | None, decision: str, request: str,
                  spent: SpentProofs) -> Accepted | None:
    """The approver's proof for ``decision`` on ``request`` of this workflow (None: the policy asserts identity)."""
    if not policy.approvals.verified:
        return None
    wanted = approval_proofs.Wanted(workflow.info().workflow_id, request, decision, by)
    try:
        return approval_proofs.check(proof, wanted=wanted, keys=policy.approvals.keys_of(by), spent=spent,
                                     now=workflow.now())
    except approval_proofs.ProofRefused as refused:
        raise ApplicationError(str(refused), type=refused.kind) from None


def spend(spent: SpentProofs, accepted: Accepted | None) -> str:
    """Remember a used proof; returns how the decider's identity was established, for the timeline."""
    if accepted is None:
        return approval_proofs.ASSERTED
    approval_proofs.spend(spent, accepted, workflow.now())
    return accepted.describe()
