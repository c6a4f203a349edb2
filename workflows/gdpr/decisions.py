"""Who may decide on a data-subject request: the checks behind approve, deny, cancel and extend.

Approving (and so exporting or erasing someone's data) needs an approver who did not file the
request (four eyes) and, in verified mode, a signed proof. Denying needs an approver and a reason
(Art. 12(4)). Cancelling stops an erasure during its grace period, before any data is touched.
An extension is allowed once, by up to two months, with a reason, before the original due date.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import approval_proofs
    from zerotouch.approval_proofs import Accepted
    from zerotouch.gdpr_models import Cancel, Deny, Extension
    from zerotouch.models import ApproveInput
    from zerotouch.policy import Policy

from workflows.approver_checks import SpentProofs, require_approver, require_proof
from workflows.gdpr.state import DsrRun


def request_of(run: DsrRun) -> str:
    return f"dsr-{run.params.request_id}"


def _running(run: DsrRun | None) -> DsrRun:
    if run is None:
        raise ApplicationError("the request is still starting; try again in a moment", type="NotStarted")
    if run.status.state == "done":
        raise ApplicationError(f"request {run.params.request_id} is over ({run.status.outcome})", type="RequestOver")
    return run


def check_approve(run: DsrRun | None, policy: Policy | None, decision: ApproveInput,
                  spent: SpentProofs) -> Accepted | None:
    run = _running(run)
    if run.status.state != "awaiting_approval":
        raise ApplicationError(f"request {run.params.request_id} is {run.status.state}, not awaiting approval",
                               type="NothingToApprove")
    policy = require_approver(policy, decision.by)
    if policy.four_eyes and decision.by == run.params.requested_by:
        raise ApplicationError(f"{decision.by!r} filed this request and may not approve it; another approver must",
                               type="SelfApproval")
    return require_proof(policy, decision.by, decision.proof, approval_proofs.APPROVE, request_of(run), spent)


def check_deny(run: DsrRun | None, policy: Policy | None, decision: Deny) -> None:
    run = _running(run)
    if run.status.state != "awaiting_approval":
        raise ApplicationError(f"request {run.params.request_id} is {run.status.state}, not awaiting approval",
                               type="NothingToDeny")
    require_approver(policy, decision.by)


def check_cancel(run: DsrRun | None, decision: Cancel) -> None:
    run = _running(run)
    if run.status.state in ("executing", "verifying"):
        raise ApplicationError("the erasure has started; it can no longer be cancelled", type="TooLate")


def check_extend(run: DsrRun | None, policy: Policy | None, decision: Extension) -> None:
    run = _running(run)
    require_approver(policy, decision.by)
    if run.status.extended:
        raise ApplicationError("the deadline was extended once already; Art. 12(3) allows one extension",
                               type="AlreadyExtended")
    if workflow.now() >= run.original_due:
        raise ApplicationError("an extension must be decided before the original due date "
                               f"({run.original_due.isoformat(timespec='seconds')})", type="TooLate")
