"""Who may steer an incident, and with what proof: the checks behind every human update and signal.

Each check raises ApplicationError (an update is refused, a signal is noted and dropped) and
touches nothing, so a refusal never changes the incident. In verified mode the decisions that
loosen — approve, request a retry — also need a proof signed by the approver's key
(`zerotouch.approval_proofs`); abort and take over stop automation and need none, by design.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from zerotouch import approval_proofs
    from zerotouch.approval_proofs import Accepted
    from zerotouch.models import AbortInput, ApproveInput, RetryRequestInput, TakeOverInput
    from zerotouch.policy import Policy

from workflows.approver_checks import SpentProofs as SpentProofs
from workflows.approver_checks import require_approver as _require_approver
from workflows.approver_checks import require_proof as _require_proof
from workflows.approver_checks import spend as spend
from workflows.incident.state import Incident


def require_open(incident: Incident) -> None:
    if incident.is_over:
        raise ApplicationError(f"incident {incident.incident_id} is {incident.state}", type="IncidentClosed")


def check_approve(incident: Incident, policy: Policy | None, decision: ApproveInput,
                  spent: SpentProofs) -> Accepted | None:
    require_open(incident)
    _refuse_if_expired(incident)
    if incident.pending is None:
        raise ApplicationError(f"nothing awaits approval on {incident.incident_id}", type="NothingToApprove")
    policy = _require_approver(policy, decision.by)
    if policy.four_eyes and decision.by == incident.pending.requested_by:
        raise ApplicationError(
            f"{decision.by!r} requested this and may not approve it; another approver must",
            type="SelfApproval",
        )
    return _require_proof(policy, decision.by, decision.proof, approval_proofs.APPROVE, request_id(incident), spent)


def _refuse_if_expired(incident: Incident) -> None:
    """An approval after the request lapsed would run an action planned for an older situation."""
    pending = incident.pending
    lapsed = pending if pending is not None and pending.expires_at is not None \
        and workflow.now() >= pending.expires_at else None
    # Kept until a person asks again (request_retry), so the frozen incident's standing request
    # cannot be approved in its place by someone answering the lapsed one late.
    lapsed = lapsed or incident.expired_approval
    if lapsed is not None:
        expired_at = lapsed.expires_at.isoformat(timespec="seconds") if lapsed.expires_at else "its deadline"
        raise ApplicationError(
            f"the approval request for {lapsed.what} expired at {expired_at} and nothing was done; "
            "ask for a retry (zerotouch incidents retry) to ask again", type="ApprovalExpired")


def check_abort(incident: Incident) -> None:
    require_open(incident)


def check_take_over(incident: Incident) -> None:
    require_open(incident)
    if incident.owner is not None:
        raise ApplicationError(f"{incident.owner!r} already owns this incident", type="AlreadyOwned")


def check_request_retry(incident: Incident, policy: Policy | None, request: RetryRequestInput,
                        spent: SpentProofs) -> Accepted | None:
    require_open(incident)
    if not incident.frozen:
        raise ApplicationError("only a frozen (escalated) incident can be retried", type="NotFrozen")
    if incident.runbook_name is None:
        raise ApplicationError("no runbook matches this incident; take it over instead", type="NoRunbook")
    if policy is None or not policy.approvals.verified:
        return None
    _require_approver(policy, request.by)
    return _require_proof(policy, request.by, request.proof, approval_proofs.REQUEST_RETRY,
                          request_id(incident), spent)


# --- the decisions, once checked (update handlers and signals alike) ------------------------


def approve(incident: Incident, policy: Policy | None, decision: ApproveInput, spent: SpentProofs) -> str:
    # Checked again (nothing awaited since the validator) so the proof is spent before anything changes.
    accepted = check_approve(incident, policy, decision, spent)
    incident.approve(decision.by, _noted(decision.note, spend(spent, accepted)), decision.proof)
    return f"approved by {decision.by}"


def abort(incident: Incident, decision: AbortInput) -> str:
    incident.abort(decision.by, decision.reason)
    return f"aborted by {decision.by}"


def take_over(incident: Incident, decision: TakeOverInput) -> str:
    incident.take_over(decision.by, decision.note)
    return f"taken over by {decision.by}"


def request_retry(incident: Incident, policy: Policy | None, request: RetryRequestInput, spent: SpentProofs) -> str:
    accepted = check_request_retry(incident, policy, request, spent)
    severity = incident.triage.severity if incident.triage else None
    incident.request_retry(request.by, _noted(request.note or "retry requested", spend(spent, accepted)),
                           policy.approvals.expiry_for(severity) if policy else None)
    return f"retry requested by {request.by}; another approver must approve"


def request_id(incident: Incident) -> str:
    """What a proof binds to: the pending approval, or (a retry with nothing pending) the attempt count."""
    return approval_proofs.incident_request(incident.pending.request_id if incident.pending else None,
                                            incident.attempts)


def _noted(note: str, identity: str) -> str:
    return f"{note} ({identity})" if note else identity
