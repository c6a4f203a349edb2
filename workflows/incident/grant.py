"""Asking the cluster's Governor before acting, and living with its answer.

Granted: act. Needs approval: the caller asks a human, then asks again as approved.
Cooldown, rate limit, blast radius or the kill switch: wait as long as it says, then ask
again (while paused the incident escalates instead of acting). Anything else: a refusal,
and the incident escalates and freezes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from zerotouch.approval_proofs import ApprovalProof
    from zerotouch.durations import format_duration
    from zerotouch.governor_models import GrantDecision, GrantRequest
    from zerotouch.governor_policy import governor_settings
    from zerotouch.policy import Policy

from workflows.incident import calls
from workflows.incident.state import Incident

# Refusals that pass by themselves: wait and ask again.
_WAIT_CODES = {"cooldown", "rate_limit", "blast_radius", "paused"}
_MAX_ASKS = 200  # bounded: a refusal that never lifts ends in escalation, not an endless loop
_WHAT = {"cooldown": "target cooldown", "rate_limit": "global rate limit", "blast_radius": "blast radius",
         "paused": "kill switch"}


@dataclass(frozen=True)
class Granted:
    decision: GrantDecision


@dataclass(frozen=True)
class NeedsApproval:
    reason: str


@dataclass(frozen=True)
class Refused:
    """The Governor said no for good, or the wait ended without acting (`human`: a human stepped in
    or the alert resolved; the incident's state tells which)."""

    reason: str
    human: bool = False


GovernorAnswer = Granted | NeedsApproval | Refused


class GrantConversation:
    """One attempt's requests to the Governor, under request IDs derived from the attempt's key."""

    def __init__(self, incident: Incident, policy: Policy, cluster: str, request: GrantRequest) -> None:
        self._incident = incident
        self._cluster = cluster
        self._settings = governor_settings(policy)
        self._base_id = request.request_id
        self._request = request
        self._asks = 0

    def approved_by(self, approver: str, proof: ApprovalProof | None) -> None:
        """Ask again as approved by `approver` (a different request, so the Governor decides afresh);
        with verified approvers the Governor checks `proof` against the workers' policy's keys."""
        self._request = self._request.model_copy(
            update={"approved_by": approver, "approval_proof": proof, "request_id": f"{self._base_id}/approved"}
        )

    async def ask(self) -> GovernorAnswer:
        """Ask until granted, until a human's approval is needed, or until refused."""
        incident = self._incident
        while self._asks < _MAX_ASKS:
            self._asks += 1
            decision = await calls.request_grant(self._request, self._settings, self._cluster)
            for notice in decision.notifications:
                incident.note("budget", notice)
            if decision.granted:
                incident.note("grant", f"granted by the Governor ({decision.reason})")
                return Granted(decision)
            if decision.needs_approval and self._request.approved_by is None:
                return NeedsApproval(decision.reason)
            if decision.code not in _WAIT_CODES:
                return Refused(f"the Governor refused ({decision.code}): {decision.reason}")
            wait = timedelta(seconds=max(1.0, decision.retry_after_seconds or 30.0))
            incident.note("grant",
                          f"{_WHAT[decision.code]}: {decision.reason}; asking again in {format_duration(wait)}")
            if decision.code == "paused":
                incident.escalate(decision.reason)
            # A fault that clears while the Governor holds the action back (the sibling incident's
            # action fixed it) needs nothing more: stop waiting instead of acting after the cooldown.
            if not await incident.wait_while_firing(wait):
                why = "a human stepped in" if incident.human_stepped_in else "the alert resolved"
                return Refused(f"{why} while waiting for the Governor", human=True)
            self._request = self._request.model_copy(update={"request_id": f"{self._base_id}/ask-{self._asks}"})
        return Refused(f"the Governor refused {_MAX_ASKS} times in a row")
