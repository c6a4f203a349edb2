"""The Governor's own check of a human-approved grant when the policy verifies approvers.

An incident checks an approver's proof when it accepts the approval, but an incident may run a
policy pinned by whoever started it. The Governor's settings come only from the workers' policy
(SECURITY.md), so it checks the proof again against those keys before it grants.
"""

from __future__ import annotations

from datetime import datetime

from zerotouch.approval_proofs import Accepted, ProofRefused, check_approved_grant
from zerotouch.governor_models import GovernorBook, GovernorSettings, GrantRequest, Refusal


def proven_approval(
    book: GovernorBook, settings: GovernorSettings, request: GrantRequest, now: datetime
) -> tuple[Refusal | None, Accepted | None]:
    """(refusal, None) when the proof fails; (None, the accepted proof: spend it on the grant) when it
    holds; (None, None) when no proof is needed (no approval, or asserted approvers)."""
    approver = request.approved_by
    if approver is None or settings.identity != "verified":
        return None, None
    try:
        return None, check_approved_grant(request.approval_proof, incident_id=request.incident_id, approver=approver,
                                          keys=settings.approver_keys.get(approver, []), spent=book.spent_proofs,
                                          now=now)
    except ProofRefused as refused:
        return ("unproven_approval", f"the approval by {approver} is not proven: {refused}", False, None), None
