"""Waiting for a human's answer to a request for approval, until it is given or the request expires.

A request stands for the policy's `approvals.expire_after` (by severity): an approval given later
would run an action planned for an older situation, so the wait ends with EXPIRED, the lapse is
recorded and nothing acts; a retry asks again.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.models import PendingApproval

from workflows.incident.state import Incident

# Incidents that were already waiting when requests began to expire replay without the timer.
APPROVAL_EXPIRY_PATCH = "approval-requests-expire"


class Answer(enum.Enum):
    """How a wait for a human ended."""

    APPROVED = "approved"
    CLEARED = "cleared"  # the alert resolved while we waited: nothing left to approve
    STOPPED = "stopped"  # a human aborted or took over
    EXPIRED = "expired"  # nobody answered in time: the request lapsed and nothing acted


async def answer_to(incident: Incident, pending: PendingApproval) -> Answer:
    """Wait until `pending` is approved, expires, the alert clears, or a human stops automation."""
    expires_at = pending.expires_at if workflow.patched(APPROVAL_EXPIRY_PATCH) else None
    try:
        await workflow.wait_condition(
            lambda: incident.approved_request == pending.request_id or incident.human_stepped_in
            or not incident.is_firing,
            timeout=_until(expires_at),
        )
    except TimeoutError:
        incident.approval_expired(pending)
        return Answer.EXPIRED
    if incident.approved_request == pending.request_id:
        incident.approved_request = None
        return Answer.APPROVED
    if incident.human_stepped_in:
        return Answer.STOPPED
    incident.approval_cleared()
    return Answer.CLEARED


async def retry_approved_or_cleared(incident: Incident) -> bool:
    """While frozen: wait for an approved retry, a human stepping in, or the alert clearing.

    True when an approver allowed one more attempt (the incident is thawed).
    """
    def answered() -> bool:
        return incident.approved_request is not None or incident.human_stepped_in or not incident.is_firing

    while not answered():
        # A retry request stands until it expires; a new request (or none yet) re-arms the wait.
        pending = incident.pending
        expires_at = pending.expires_at if pending is not None and workflow.patched(APPROVAL_EXPIRY_PATCH) else None

        def moved_on(waited: PendingApproval | None = pending) -> bool:
            return answered() or incident.pending is not waited

        try:
            await workflow.wait_condition(moved_on, timeout=_until(expires_at))
        except TimeoutError:
            assert pending is not None
            incident.approval_expired(pending)
    if incident.approved_request is not None and not incident.human_stepped_in:
        incident.thawed()
        return True
    return False


def _until(moment: datetime | None) -> timedelta | None:
    return None if moment is None else max(moment - workflow.now(), timedelta(0))
